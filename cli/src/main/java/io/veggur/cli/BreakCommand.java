package io.veggur.cli;

import io.veggur.protocol.Register;
import io.veggur.vmi.os.linux.trace.LinuxTracer;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.OptionalLong;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/**
 * {@code veggur vmi break}: a breakpoint on a kernel function (by kallsyms name, read from guest memory) or address,
 * one line per hit. With {@code --set-return} the function runs as usual and the caller sees VALUE instead of what it
 * returned (see {@link LinuxTracer#onReturn}).
 */
@Command(name = "break", description = "Break on a kernel function or address and print each hit (trace role); "
        + "--set-return changes what the function returns (write role).")
final class BreakCommand implements Callable<Integer> {
    @Mixin Target target;
    @Parameters(paramLabel = "SYMBOL|ADDR|phys:ADDR",
            description = "A kernel symbol, a guest-virtual address, or a guest-physical address in the kernel image.")
    String where;
    @Option(names = "--count", defaultValue = "10", description = "Stop after this many hits (default 10).") int count;
    @Option(names = "--seconds", defaultValue = "30", description = "Stop after this long at the latest (default 30).") int seconds;
    @Option(names = "--pid", description = "Only hits while this process's address space is active.") Integer pid;
    @Option(names = "--set-return", paramLabel = "VALUE", description = "Make the function return VALUE.") String setReturn;
    @Option(names = "--json") boolean json;

    @Override
    public Integer call() throws Exception {
        if (count < 1 || seconds < 1) {
            throw new IllegalArgumentException("--count and --seconds must be positive");
        }
        Long returnValue = setReturn == null ? null : Sizes.parseAddress(setReturn);
        try (TraceCommand.Traced traced = TraceCommand.Traced.open(target)) {
            LinuxTracer tracer = traced.tracer();
            long address = where.startsWith("phys:") ? tracer.addressOfPhysical(Sizes.parseAddress(where.substring(5)))
                    : where.startsWith("0x") ? Sizes.parseAddress(where) : tracer.address(where);
            long root = pid == null ? 0 : traced.pageTableRoot(pid);
            CountDownLatch done = new CountDownLatch(count);
            AtomicInteger hits = new AtomicInteger();
            if (returnValue == null) {
                tracer.onEntry(address, root, hit -> {
                    if (hits.incrementAndGet() <= count) {
                        print(hits.get(), hit, null);
                        done.countDown();
                    }
                });
            } else {
                tracer.onReturn(address, root, (hit, returned) -> {
                    if (hits.incrementAndGet() > count) {
                        return OptionalLong.empty();
                    }
                    print(hits.get(), hit, returned);
                    done.countDown();
                    return OptionalLong.of(returnValue);
                });
            }
            System.err.printf("veggur: breakpoint set at %s (%#x)%s%n", where, address, pid == null ? "" : " for process " + pid);
            System.err.flush();
            boolean finished = done.await(seconds, TimeUnit.SECONDS);
            if (!json) {
                System.out.println(Math.min(hits.get(), count) + " hits" + (finished ? "" : " (stopped after " + seconds + " s)"));
            }
        }
        return 0;
    }

    private void print(int hit, LinuxTracer.Hit event, Long returned) {
        Map<Register, Long> r = event.registers();
        if (json) {
            Map<String, Object> row = new LinkedHashMap<>();
            row.put("hit", hit);
            row.put("vcpu", event.vcpu());
            row.put("pid", event.task().tgid());
            row.put("comm", event.task().name());
            row.put("rip", r.getOrDefault(Register.RIP, 0L));
            row.put("cr3", r.getOrDefault(Register.CR3, 0L));
            for (Register register : new Register[] {Register.RDI, Register.RSI, Register.RDX, Register.RSP}) {
                row.put(register.name().toLowerCase(), r.getOrDefault(register, 0L));
            }
            if (returned != null) {
                row.put("returned", returned);
                row.put("replacedBy", Sizes.parseAddress(setReturn));
            }
            System.out.println(Json.write(row));
        } else if (returned != null) {
            System.out.printf("hit %d: pid %d (%s) returned %d, replaced by %s%n", hit, event.task().tgid(),
                    event.task().name(), returned, setReturn);
        } else {
            System.out.printf("hit %d: vcpu %d pid %d (%s) rip %#x rdi %#x rsi %#x rdx %#x%n", hit, event.vcpu(),
                    event.task().tgid(), event.task().name(), r.getOrDefault(Register.RIP, 0L),
                    r.getOrDefault(Register.RDI, 0L), r.getOrDefault(Register.RSI, 0L), r.getOrDefault(Register.RDX, 0L));
        }
        System.out.flush();
    }
}
