package io.veggur.vmi.symbols.kallsyms;

import io.veggur.vmi.memory.PhysicalMemory;
import java.io.IOException;
import java.util.OptionalLong;

/**
 * Finds and decodes the running Linux kernel's kallsyms tables in guest-physical memory, with no profile: no
 * System.map, no debug info, no page tables. Needs CONFIG_KALLSYMS_ALL (Debian has it) for data symbols such as
 * linux_banner, which locate the image.
 *
 * <p>Format (scripts/kallsyms.c writes it into .rodata; kernel/kallsyms.c reads it). Symbols are sorted by address.
 * Each name is compressed against {@code kallsyms_token_table}, 256 NUL-terminated strings whose offsets are in
 * {@code kallsyms_token_index}; {@code kallsyms_names} holds per symbol a length and that many token numbers, the
 * expansion being the nm type letter followed by the name; {@code kallsyms_markers} gives the offset of every 256th
 * entry; {@code kallsyms_num_syms} the count; {@code kallsyms_offsets} plus {@code kallsyms_relative_base} the
 * addresses. Every array starts on an 8-byte boundary (x86-64), zero-padded. What changed in the releases Debian ships
 * (4.19 buster, 5.10 bullseye, 6.1 bookworm, 6.12 trixie) and around them:
 * <ul>
 *   <li>4.6 (2213e9a66bb8): base-relative offsets with x86-64's absolute per-CPU rule; order offsets,
 *       relative_base, num_syms, names, markers, token_table, token_index; num_syms and markers u64.</li>
 *   <li>4.20 (80ffbaa5b1bd): num_syms and markers become u32.</li>
 *   <li>6.1 (73bbb94466fd): a name length of 128 or more takes two bytes (ULEB128); KSYM_NAME_LEN 128 to 512.</li>
 *   <li>6.2 (60443c88f3a8): kallsyms_seqs_of_names (3 bytes per symbol) inserted between markers and token_table.</li>
 *   <li>6.4 (404bad70fcf7): new order num_syms, names, markers, token_table, token_index, offsets, relative_base,
 *       seqs_of_names. 6.12 is laid out like this.</li>
 *   <li>6.11 (64e166099b69) dropped the non-relative kallsyms_addresses option (x86-64 never used it by default),
 *       and 6.15 (01157ddc58dc) the absolute per-CPU rule: offsets then are all unsigned. Both encodings are
 *       handled. 7.0 (a081b5789255) replaces relative_base with place-relative offsets: not supported.</li>
 * </ul>
 * Layouts are told apart by structure, not by version: Debian's 6.1 (6.1.192) carries the 6.2 layout from stable.
 * Checked against the guests' own /proc/kallsyms: Debian 5.10, 6.1 and 6.12, with and without KASLR (KallsymsIT);
 * 4.19 (buster, no longer on deb.debian.org) and 6.15 only against synthetic tables. See {@link TokenTable},
 * {@link KallsymsLocator} and {@link KernelImage} for how each part is recognized.
 *
 * <p>Search: RAM is scanned upwards for the digit tokens "0".."9" of a token table ({@link DigitRunScanner}); each
 * hit is checked against the full structure, and the first hit that yields consistent tables, names and a kernel
 * image showing linux_banner wins. Guest memory is untrusted: every count, length and offset is bounded and checked,
 * and checking look-alikes is capped in number and in bytes copied, so hostile memory costs bounded time and memory.
 */
public final class KallsymsFinder {
    /** Digit runs checked before giving up; a kernel has one, and random data essentially none. */
    static final int MAX_RUNS = 10_000;
    /** Bytes copied to check candidates (a real kernel's tables need a few MiB). */
    static final long CHECK_BUDGET = 1L << 30;

    private KallsymsFinder() {
    }

    /**
     * The kernel's symbols and image location, from guest-physical memory alone. Scanning RAM up to the tables takes
     * most of the time: on a 256 MiB guest 120 to 190 ms in a cold JVM, 50 ms in a warm one with the kernel at its
     * default 16 MiB.
     *
     * @throws KallsymsException if no complete, consistent kallsyms tables are found, or reading memory fails
     */
    public static KernelSymbols find(PhysicalMemory memory) throws KallsymsException {
        DigitRunScanner sparse = new DigitRunScanner(memory, true);
        try {
            return find(memory, sparse);
        } catch (KallsymsException e) {
            if (sparse.skipped() == 0) {
                throw e;
            }
            // Skipped pages might have held data after all (swapped out): look again, everywhere.
            return find(memory, new DigitRunScanner(memory, false));
        }
    }

    private static KernelSymbols find(PhysicalMemory memory, DigitRunScanner scanner) throws KallsymsException {
        KallsymsLocator locator = new KallsymsLocator(new WindowReader(memory, CHECK_BUDGET));
        String failure = null;
        int runs = 0;
        for (long run = nextRun(scanner); run >= 0; run = nextRun(scanner)) {
            if (++runs > MAX_RUNS) {
                throw new KallsymsException("gave up after %d look-alikes of a kallsyms token table in the first %s "
                        .formatted(MAX_RUNS, size(scanner.scanned())) + "of RAM");
            }
            KallsymsTables tables = locator.locate(run);
            if (tables != null) {
                Outcome outcome = complete(memory, tables);
                if (outcome.symbols() != null) {
                    return outcome.symbols();
                }
                failure = outcome.failure();
            }
        }
        if (runs == 0) {
            throw new KallsymsException("no kallsyms token table found in " + size(scanner.scanned())
                    + " of RAM: not a Linux guest, or not booted yet");
        }
        throw new KallsymsException("no complete kallsyms tables in %s of RAM (%d token-table look-alikes): %s"
                .formatted(size(scanner.scanned()), runs, failure != null ? failure : locator.furthestFailure()));
    }

    /** Symbols, or why consistent-looking tables are not a kernel's after all. */
    private record Outcome(KernelSymbols symbols, String failure) {
    }

    /** Decodes the names and places the image by linux_banner and linux_proc_banner. */
    private static Outcome complete(PhysicalMemory memory, KallsymsTables tables) throws KallsymsException {
        String where = "the kallsyms at guest-physical 0x%x".formatted(tables.tokens().address());
        KallsymsTables.Decoded decoded = tables.decodeNames();
        if (decoded == null) {
            return new Outcome(null, "the names of " + where + " expand to something no kernel emits");
        }
        long[] addresses = tables.addresses();
        int text = decoded.names().first("_text");
        int banner = decoded.names().first("linux_banner");
        int procBanner = decoded.names().first("linux_proc_banner");
        if (text < 0 || banner < 0 || procBanner < 0 || !KallsymsLocator.inKernelImage(addresses[text])
                || !KallsymsLocator.inKernelImage(addresses[banner])
                || !KallsymsLocator.inKernelImage(addresses[procBanner])) {
            return new Outcome(null, where + " lack _text, linux_banner or linux_proc_banner in the kernel image "
                    + "(CONFIG_KALLSYMS_ALL is needed)");
        }
        int first = text;
        while (first > 0 && KallsymsLocator.inKernelImage(addresses[first - 1])) {
            first--;
        }
        OptionalLong physBase = KernelImage.physBase(memory, tables.tokens().address(), addresses[first],
                addresses[addresses.length - 1], addresses[banner], addresses[procBanner]);
        if (physBase.isEmpty()) {
            return new Outcome(null, "no 2 MiB-aligned placement of the image around " + where + " shows linux_banner");
        }
        return new Outcome(new KernelSymbols(tables, decoded, physBase.getAsLong()), null);
    }

    private static long nextRun(DigitRunScanner scanner) throws KallsymsException {
        try {
            return scanner.next();
        } catch (IOException e) {
            throw new KallsymsException("reading guest RAM failed after %s: %s".formatted(size(scanner.scanned()),
                    e.getMessage()), e);
        }
    }

    private static String size(long bytes) {
        return bytes >= 1L << 30 && bytes % (1L << 30) == 0 ? (bytes >> 30) + " GiB"
                : bytes >= 1L << 20 ? (bytes >> 20) + " MiB" : bytes + " bytes";
    }
}
