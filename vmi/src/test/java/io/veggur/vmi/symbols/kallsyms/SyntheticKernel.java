package io.veggur.vmi.symbols.kallsyms;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.HashSet;
import java.util.List;
import java.util.Random;
import java.util.Set;

/**
 * A fake x86-64 kernel image whose kallsyms tables are encoded the way scripts/kallsyms.c encodes them (same token
 * compression scheme, entry and marker formats, array order and 8-byte alignment) for one {@link Layout} and address
 * encoding, with linux_banner and linux_proc_banner in its .rodata and random bytes everywhere else. Addresses are
 * runtime ones: relative_base holds _text after the KASLR slide, as the kernel's boot-time relocation leaves it.
 */
final class SyntheticKernel {
    static final long START_KERNEL_MAP = 0xffff_ffff_8000_0000L;
    static final long DEFAULT_TEXT = 0xffff_ffff_8100_0000L;
    static final int IMAGE_SIZE = 8 << 20;
    static final int RODATA = 2 << 20;
    static final int KALLSYMS = RODATA + 0x1000;
    static final String BANNER = "Linux version 6.1.0-synthetic (test@veggur) (gcc 12.2.0) #1 SMP\n";

    record Symbol(String name, char type, long address, boolean percpu) {
    }

    final Layout layout;
    final boolean absolutePercpu;
    final boolean bigLengths;
    final long text;
    final List<Symbol> symbols;
    final byte[] image = new byte[IMAGE_SIZE];
    /** Image offsets of the arrays, by label. */
    int numSyms, names, markers, seqs = -1, tokenTable, tokenIndex, offsets, relativeBase, end;

    private SyntheticKernel(Layout layout, boolean absolutePercpu, boolean bigLengths, long text, List<Symbol> symbols,
                            Random random) {
        this.layout = layout;
        this.absolutePercpu = absolutePercpu;
        this.bigLengths = bigLengths;
        this.text = text;
        this.symbols = symbols;
        noise(image, random.nextLong());
        put(RODATA + 0x100, "%s version %s (test@veggur) (gcc 12.2.0) %s\n\0".getBytes(StandardCharsets.US_ASCII));
        put(RODATA + 0x300, (BANNER + "\0").getBytes(StandardCharsets.US_ASCII));
        writeKallsyms();
    }

    /**
     * A kernel with about {@code count} symbols and KASLR {@code slide}. With absolute per-CPU addresses it also has
     * 'A' symbols at small per-CPU offsets; with big lengths one name of more than 127 tokens.
     */
    static SyntheticKernel create(Layout layout, boolean absolutePercpu, boolean bigLengths, long slide, int count,
                                  long seed) {
        Random random = new Random(seed);
        long text = DEFAULT_TEXT + slide;
        List<Symbol> list = new ArrayList<>();
        list.add(new Symbol("_text", 'T', text, false));
        list.add(new Symbol("startup_64", 'T', text, false));
        list.add(new Symbol("digits_0123456789", 'T', text + 0x1000, false));
        list.add(new Symbol("linux_proc_banner", 'R', text + RODATA + 0x100, false));
        list.add(new Symbol("linux_banner", 'R', text + RODATA + 0x300, false));
        list.add(new Symbol("duplicate_static", 't', text + 0x2000, false));
        list.add(new Symbol("duplicate_static", 't', text + 0x3000, false));
        list.add(new Symbol("_end", 'B', text + IMAGE_SIZE - 0x1000, false));
        if (absolutePercpu) {
            list.add(new Symbol("fixed_percpu_data", 'A', 0, true));
            list.add(new Symbol("__per_cpu_start", 'A', 0, true));
            for (int i = 0; i < 20; i++) {
                list.add(new Symbol("percpu_var_" + i, 'A', 0x1000 + 0x40L * i, true));
            }
        }
        if (bigLengths) {
            StringBuilder name = new StringBuilder("long_rust_name_");
            while (name.length() < 400) {
                name.append((char) ('a' + random.nextInt(26))).append((char) ('A' + random.nextInt(26)));
            }
            list.add(new Symbol(name.toString(), 'T', text + 0x4000, false));
        }
        String[] words = {"do", "sys", "vfs", "read", "write", "page", "irq", "lock", "sched", "net", "tcp", "mm",
                "init", "exit", "alloc", "free", "dev", "pci", "virtio", "queue", "work", "timer", "cpu", "task"};
        char[] textTypes = {'T', 't', 'W'};
        char[] dataTypes = {'D', 'd', 'R', 'r', 'B', 'b', 'V'};
        while (list.size() < count) {
            StringBuilder name = new StringBuilder(random.nextInt(4) == 0 ? "__" : "");
            for (int parts = 1 + random.nextInt(4); parts > 0; parts--) {
                name.append(words[random.nextInt(words.length)]).append(parts > 1 ? "_" : "");
            }
            if (random.nextInt(3) == 0) {
                name.append('.').append(random.nextInt(100_000));
            }
            boolean code = random.nextBoolean();
            long address = code ? text + 0x5000 + random.nextInt(RODATA - 0x6000)
                    : text + (4 << 20) + random.nextInt(3 << 20);
            char[] types = code ? textTypes : dataTypes;
            char type = types[random.nextInt(types.length)];
            list.add(new Symbol(name.toString(), type, address & -16L, false));
        }
        list.sort((a, b) -> Long.compareUnsigned(a.address(), b.address()));     // stable, like the kernel's tie rules
        return new SyntheticKernel(layout, absolutePercpu, bigLengths, text, List.copyOf(list), random);
    }

    /** Guest RAM of {@code ramSize} random bytes with this image at guest-physical {@code physical}. */
    byte[] ram(int ramSize, long physical, long seed) {
        byte[] ram = new byte[ramSize];
        noise(ram, seed);
        System.arraycopy(image, 0, ram, (int) physical, IMAGE_SIZE);
        return ram;
    }

    /** Fills with random bytes: a 64 KiB random block, repeated (quick, and noise all the same). */
    static void noise(byte[] bytes, long seed) {
        byte[] block = new byte[Math.min(bytes.length, 1 << 16)];
        new Random(seed).nextBytes(block);
        for (int at = 0; at < bytes.length; at += block.length) {
            System.arraycopy(block, 0, bytes, at, Math.min(block.length, bytes.length - at));
        }
    }

    long physBase(long physical) {
        return physical - (text - START_KERNEL_MAP);
    }

    /** The first symbol of each name, as the kernel's lookups see them. */
    List<Symbol> firstOfEachName() {
        List<Symbol> first = new ArrayList<>();
        Set<String> seen = new HashSet<>();
        for (Symbol s : symbols) {
            if (seen.add(s.name())) {
                first.add(s);
            }
        }
        return first;
    }

    private void put(int offset, byte[] bytes) {
        System.arraycopy(bytes, 0, image, offset, bytes.length);
    }

    // ---- encoding, after scripts/kallsyms.c ------------------------------------------------------------------

    private void writeKallsyms() {
        int count = symbols.size();
        List<int[]> entries = new ArrayList<>();
        for (Symbol s : symbols) {
            byte[] raw = (s.type() + s.name()).getBytes(StandardCharsets.ISO_8859_1);
            int[] codes = new int[raw.length];
            for (int i = 0; i < raw.length; i++) {
                codes[i] = raw[i] & 0xff;
            }
            entries.add(codes);
        }
        byte[][] tokens = compress(entries);

        Out out = new Out(KALLSYMS);
        if (layout.offsetsFirst()) {
            writeOffsets(out);
        }
        numSyms = out.label();
        if (layout == Layout.U64_MARKERS) {
            out.u64(count);
        } else {
            out.u32(count);
        }
        names = out.label();
        List<Integer> markerValues = new ArrayList<>();
        for (int i = 0; i < count; i++) {
            if (i % 256 == 0) {
                markerValues.add(out.position - names);
            }
            int[] codes = entries.get(i);
            if (codes.length > 0x7f) {
                if (!bigLengths) {
                    throw new IllegalStateException("a name of 128 tokens or more needs big lengths");
                }
                out.u8(codes.length & 0x7f | 0x80);
                out.u8(codes.length >> 7);
            } else {
                out.u8(codes.length);
            }
            for (int code : codes) {
                out.u8(code);
            }
        }
        markers = out.label();
        for (int value : markerValues) {
            if (layout == Layout.U64_MARKERS) {
                out.u64(value);
            } else {
                out.u32(value);
            }
        }
        if (layout == Layout.SEQS_BEFORE_TOKEN_TABLE) {
            writeSeqs(out);
        }
        tokenTable = out.label();
        int[] index = new int[256];
        for (int i = 0; i < 256; i++) {
            index[i] = out.position - tokenTable;
            for (byte b : tokens[i]) {
                out.u8(b);
            }
            out.u8(0);
        }
        tokenIndex = out.label();
        for (int value : index) {
            out.u16(value);
        }
        if (!layout.offsetsFirst()) {
            writeOffsets(out);
            writeSeqs(out);
        }
        end = out.label();
        put(KALLSYMS, Arrays.copyOfRange(out.bytes, KALLSYMS, out.position));
    }

    private void writeOffsets(Out out) {
        long base = absolutePercpu
                ? symbols.stream().filter(s -> !s.percpu()).mapToLong(Symbol::address).min().orElseThrow()
                : symbols.getFirst().address();
        offsets = out.label();
        for (Symbol s : symbols) {
            long offset = !absolutePercpu ? s.address() - base : s.percpu() ? s.address() : base - s.address() - 1;
            out.u32((int) offset);
        }
        relativeBase = out.label();
        out.u64(base);
    }

    private void writeSeqs(Out out) {
        Integer[] byName = new Integer[symbols.size()];
        for (int i = 0; i < byName.length; i++) {
            byName[i] = i;
        }
        Arrays.sort(byName, Comparator.comparing((Integer i) -> symbols.get(i).name())
                .thenComparing(i -> symbols.get(i).address(), Long::compareUnsigned));
        seqs = out.label();
        for (int seq : byName) {
            out.u8(seq >> 16);
            out.u8(seq >> 8);
            out.u8(seq);
        }
    }

    /**
     * The token table: every byte value used in a name stands for itself; then, from 255 down, each unused value
     * becomes the currently most frequent adjacent pair of codes, which is replaced in all names. Rewrites
     * {@code entries} to the compressed codes and returns the 256 expanded strings (empty for unused values).
     */
    private static byte[][] compress(List<int[]> entries) {
        byte[][] table = new byte[256][];
        for (int[] codes : entries) {
            for (int code : codes) {
                table[code] = new byte[] {(byte) code};
            }
        }
        int[] counts = new int[1 << 16];
        for (int slot = 255; slot >= 0; slot--) {
            if (table[slot] != null) {
                continue;
            }
            Arrays.fill(counts, 0);
            for (int[] codes : entries) {
                for (int i = 0; i + 1 < codes.length; i++) {
                    counts[codes[i] | codes[i + 1] << 8]++;
                }
            }
            int best = 0;
            for (int pair = 1; pair < counts.length; pair++) {
                if (counts[pair] > counts[best]) {
                    best = pair;
                }
            }
            if (counts[best] == 0) {
                break;
            }
            byte[] first = table[best & 0xff];
            byte[] second = table[best >> 8];
            byte[] joined = Arrays.copyOf(first, first.length + second.length);
            System.arraycopy(second, 0, joined, first.length, second.length);
            table[slot] = joined;
            for (int e = 0; e < entries.size(); e++) {
                entries.set(e, replace(entries.get(e), best & 0xff, best >> 8, slot));
            }
        }
        for (int i = 0; i < 256; i++) {
            if (table[i] == null) {
                table[i] = new byte[0];
            }
        }
        return table;
    }

    private static int[] replace(int[] codes, int first, int second, int with) {
        int[] out = new int[codes.length];
        int n = 0;
        for (int i = 0; i < codes.length; i++) {
            if (i + 1 < codes.length && codes[i] == first && codes[i + 1] == second) {
                out[n++] = with;
                i++;
            } else {
                out[n++] = codes[i];
            }
        }
        return Arrays.copyOf(out, n);
    }

    /** Little-endian output at image offsets, with {@code .balign 8} zero padding before each label. */
    private static final class Out {
        byte[] bytes;
        int position;

        Out(int start) {
            bytes = new byte[start + (1 << 16)];
            position = start;
        }

        int label() {
            while (position % 8 != 0) {
                u8(0);
            }
            return position;
        }

        void u8(int value) {
            if (position == bytes.length) {
                bytes = Arrays.copyOf(bytes, bytes.length * 2);
            }
            bytes[position++] = (byte) value;
        }

        void u16(int value) {
            u8(value);
            u8(value >> 8);
        }

        void u32(int value) {
            u16(value);
            u16(value >> 16);
        }

        void u64(long value) {
            u32((int) value);
            u32((int) (value >>> 32));
        }
    }
}
