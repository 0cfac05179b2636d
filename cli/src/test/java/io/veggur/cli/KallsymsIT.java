package io.veggur.cli;

import static org.assertj.core.api.Assertions.assertThat;

import io.veggur.vmi.IntrospectionSession;
import io.veggur.vmi.memory.PhysicalMemory;
import io.veggur.vmi.symbols.kallsyms.KallsymsFinder;
import io.veggur.vmi.symbols.kallsyms.KernelSymbols;
import io.veggur.vmi.symbols.kallsyms.KernelSymbols.Symbol;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Profile-free symbol discovery on real Debian kernels of three kallsyms generations (bullseye 5.10: u32 markers;
 * bookworm 6.1: seqs_of_names before the token table; trixie 6.12: offsets after the token index), with KASLR and
 * without: what {@link KallsymsFinder} decodes from guest RAM must be what the guest's own /proc/kallsyms shows root.
 */
class KallsymsIT {
    private static final String APPEND = "console=ttyS0 panic=-1 quiet";
    private static final Duration QUERY_TIMEOUT = Duration.ofSeconds(60);
    /** Well-known symbols; a kernel lacking some (swapper_pg_dir is a macro on x86-64) shows so in its own answer. */
    private static final List<String> NAMES = List.of("_text", "_stext", "_etext", "_end", "init_task", "init_mm",
            "linux_banner", "linux_proc_banner", "modules", "__start_BTF", "__stop_BTF", "init_top_pgt",
            "swapper_pg_dir", "__x64_sys_getpid", "schedule", "page_offset_base", "vmemmap_base", "vmalloc_base",
            "pgtable_l5_enabled", "__pgtable_l5_enabled", "jiffies_64", "init_uts_ns", "fixed_percpu_data",
            "current_task", "pcpu_hot", "__per_cpu_offset", "kallsyms_token_table");

    static Stream<Arguments> kernels() {
        return Stream.of("bookworm", "bullseye", "trixie")
                .flatMap(suite -> Stream.of(Arguments.of(suite, true), Arguments.of(suite, false)));
    }

    @ParameterizedTest(name = "{0}, kaslr={1}")
    @MethodSource("kernels")
    @Timeout(300)
    void find_equalsTheGuestsOwnKallsyms(String suite, boolean kaslr) throws Exception {
        GuestKernels.Kernel kernel = GuestKernels.build(suite);
        String append = kaslr ? APPEND : APPEND + " nokaslr";
        String name = "ksyms-" + suite + (kaslr ? "" : "-nokaslr");
        try (TestVm vm = TestVm.boot(name, spec -> spec.withKernel(kernel.vmlinuz(), kernel.initrd(), append));
             IntrospectionSession session = IntrospectionSession.connect(vm.socket())) {
            PhysicalMemory memory = session.physicalMemory();
            long started = System.nanoTime();
            KernelSymbols symbols = KallsymsFinder.find(memory);
            long millis = (System.nanoTime() - started) / 1_000_000;
            System.out.printf("KallsymsIT %s (%s, kaslr=%b): %s, found in %d ms%n", suite, kernel.release(), kaslr,
                    symbols, millis);

            Map<String, Symbol> truth = guestKallsyms(vm, "t-" + name);
            assertThat(truth).as("symbols the guest has of %s", NAMES).hasSizeGreaterThanOrEqualTo(18)
                    .containsKeys("_text", "init_task", "linux_banner", "init_top_pgt", "schedule", "page_offset_base");
            truth.forEach((symbol, expected) -> assertThat(symbols.symbol(symbol)).as(symbol).contains(expected));
            assertThat(symbols.count()).as("core kernel symbols").isEqualTo(guestSymbolCount(vm, "c-" + name));

            long banner = symbols.address("linux_banner").orElseThrow();
            assertThat(new String(memory.read(symbols.imagePhysical(banner), 14), StandardCharsets.US_ASCII))
                    .isEqualTo("Linux version ");
            long schedule = truth.get("schedule").address();
            assertThat(symbols.symbolAt(schedule + 5)).map(Symbol::name).contains("schedule");
            assertThat(symbols.kaslrSlide()).isEqualTo(truth.get("_text").address() - KernelSymbols.DEFAULT_TEXT);
            if (!kaslr) {
                assertThat(symbols.kaslrSlide()).isZero();
                assertThat(symbols.physBase()).as("nokaslr loads the image at 16 MiB").isZero();
            }
            assertThat(millis).as("find in 256 MiB").isLessThan(3000);
        }
    }

    /**
     * The guest's /proc/kallsyms lines for {@link #NAMES}. The names follow the tag, and a shell comment swallows the
     * tag that {@link io.veggur.host.vm.GuestConsole#query} appends after them.
     */
    private static Map<String, Symbol> guestKallsyms(TestVm vm, String tag) throws Exception {
        String command = "veggur-truth kallsyms " + tag + " " + String.join(" ", NAMES) + " #";
        Map<String, Symbol> symbols = new HashMap<>();
        for (String line : vm.console.query(command, "VEGGUR-KSYM", tag, QUERY_TIMEOUT)) {
            String[] fields = line.split(" ");
            if (fields.length == 4 && fields[0].equals("VEGGUR-KSYM")) {
                long address = Long.parseUnsignedLong(fields[1], 16);
                symbols.put(fields[3], new Symbol(fields[3], fields[2].charAt(0), address));
            }
        }
        return symbols;
    }

    private static int guestSymbolCount(TestVm vm, String tag) throws Exception {
        for (String line : vm.console.query("veggur-truth kallsyms-count", "VEGGUR-KSYM", tag, QUERY_TIMEOUT)) {
            if (line.startsWith("VEGGUR-KSYM-COUNT ")) {
                return Integer.parseInt(line.substring("VEGGUR-KSYM-COUNT ".length()));
            }
        }
        throw new AssertionError("the guest did not answer veggur-truth kallsyms-count " + tag);
    }
}
