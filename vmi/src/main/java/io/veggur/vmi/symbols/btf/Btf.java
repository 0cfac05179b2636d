package io.veggur.vmi.symbols.btf;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.OptionalInt;
import java.util.OptionalLong;

/**
 * The kernel's BPF Type Format (Documentation/bpf/btf.rst), parsed from bytes read out of a guest, answering the
 * layout questions an OS model asks: where is {@code task_struct.comm}, how big is {@code struct cred}.
 *
 * <p>Format facts relied upon. All integers are little-endian (a byte-swapped magic means a big-endian guest and is
 * rejected). The 24-byte header is {@code u16 magic 0xeB9F, u8 version 1, u8 flags 0, u32 hdr_len, u32 type_off,
 * u32 type_len, u32 str_off, u32 str_len}; the section offsets count from the end of the header, i.e. from
 * {@code hdr_len}, which may exceed 24. The string section starts and ends with a NUL byte, so offset 0 is the empty
 * name of anonymous types. The type section is a sequence of records; the n-th record (from 1) has type id n, and id 0
 * is void. Each record is a 12-byte {@code btf_type} ({@code u32 name_off}; {@code u32 info} with vlen in bits 0-15,
 * kind in bits 24-28, kind_flag in bit 31; {@code u32 size_or_type}) followed by kind-specific data: INT, VAR and
 * DECL_TAG 4 bytes; ARRAY 12 ({@code type, index_type, nelems}); STRUCT and UNION 12 per member
 * ({@code name_off, type, offset}); ENUM 8 per value ({@code name_off, s32 val}); ENUM64 12 per value
 * ({@code name_off, lo32, hi32}); FUNC_PROTO 8 per parameter; DATASEC 12 per variable; the others nothing. Since every
 * piece is a multiple of 4 bytes, the type section is kept as an {@code int[]}.
 *
 * <p>Invariants after {@code parse}: every record lies wholly inside {@code words} and {@code typeStart} holds
 * its first word for ids 1..{@link #typeCount()}; every record's kind is known and its name offset is inside
 * {@code strings}; indexed names are at most {@value #MAX_NAME_LENGTH} bytes. References between types and member
 * name offsets are checked when a query follows them, not at parse. Every walk along references is bounded by
 * {@value #MAX_DEPTH} steps, so corrupt data with cycles fails instead of hanging. Nothing is written after the
 * constructor, so an instance is safe to share between threads.
 *
 * <p>Names are indexed for every named type except DECL_TAG and TYPE_TAG (whose names are annotations) as a sorted
 * {@code long[]} of {@code hash << 32 | id}: no strings are decoded at parse, and a lookup binary-searches its hash
 * and compares bytes. Equal hashes cost a linear scan of the run, never worse; among equal names the lowest id wins.
 */
public final class Btf {
    /** BTF does not record pointer width; Veggur's guests are 64-bit. */
    static final int POINTER_SIZE = 8;
    /** The longest reference chain (typedefs, qualifiers, pointers, arrays, nested anonymous members) followed. */
    static final int MAX_DEPTH = 64;
    /** The kernel rejects names longer than KSYM_NAME_LEN (512); anything longer is corrupt. */
    static final int MAX_NAME_LENGTH = 1024;

    private static final int HEADER_SIZE = 24;
    private static final int MAGIC = 0xEB9F;
    private static final int TYPE_WORDS = 3;

    private final int[] words;
    private final int[] typeStart;
    private final byte[] strings;
    private final long[] nameIndex;

    private Btf(int[] words, int[] typeStart, byte[] strings, long[] nameIndex) {
        this.words = words;
        this.typeStart = typeStart;
        this.strings = strings;
        this.nameIndex = nameIndex;
    }

    /** Parses BTF from {@code raw}'s position to its limit; {@code raw} itself is not modified. */
    public static Btf parse(ByteBuffer raw) throws BtfException {
        ByteBuffer in = raw.slice().order(ByteOrder.LITTLE_ENDIAN);
        int available = in.remaining();
        if (available < HEADER_SIZE) {
            throw new BtfException("BTF is " + available + " bytes, shorter than its " + HEADER_SIZE + "-byte header");
        }
        int magic = Short.toUnsignedInt(in.getShort(0));
        if (magic == Short.toUnsignedInt(Short.reverseBytes((short) MAGIC))) {
            throw new BtfException("BTF is big-endian (magic bytes eb 9f); only little-endian guests are supported");
        }
        if (magic != MAGIC) {
            throw new BtfException(String.format("bad BTF magic 0x%04x, expected 0x%04x", magic, MAGIC));
        }
        int version = in.get(2) & 0xff;
        if (version != 1) {
            throw new BtfException("unsupported BTF version " + version + ", expected 1");
        }
        int flags = in.get(3) & 0xff;
        if (flags != 0) {
            throw new BtfException(String.format("unsupported BTF header flags 0x%02x", flags));
        }
        long headerLength = Integer.toUnsignedLong(in.getInt(4));
        if (headerLength < HEADER_SIZE || headerLength > available) {
            throw new BtfException("BTF header length " + headerLength + " is outside [" + HEADER_SIZE + ", "
                    + available + "] (the bytes available)");
        }
        ByteBuffer typeSection = section(in, headerLength, in.getInt(8), in.getInt(12), "type");
        ByteBuffer stringSection = section(in, headerLength, in.getInt(16), in.getInt(20), "string");

        if (typeSection.remaining() % 4 != 0) {
            throw new BtfException("BTF type section length " + typeSection.remaining() + " is not a multiple of 4");
        }
        int[] words = new int[typeSection.remaining() / 4];
        typeSection.asIntBuffer().get(words);

        byte[] strings = new byte[stringSection.remaining()];
        stringSection.get(strings);
        if (strings.length == 0 || strings[0] != 0 || strings[strings.length - 1] != 0) {
            throw new BtfException("BTF string section (" + strings.length
                    + " bytes) must start and end with a NUL byte");
        }
        return frame(words, strings);
    }

    /** The section at {@code offset} past the header, checked to lie inside {@code in}. */
    private static ByteBuffer section(ByteBuffer in, long headerLength, int offset, int length, String what)
            throws BtfException {
        long start = headerLength + Integer.toUnsignedLong(offset);
        long end = start + Integer.toUnsignedLong(length);
        if (end > in.remaining()) {
            throw new BtfException("BTF " + what + " section [" + start + ", " + end + ") runs past the end of the "
                    + in.remaining() + "-byte BTF");
        }
        return in.slice((int) start, (int) (end - start)).order(ByteOrder.LITTLE_ENDIAN);
    }

    /** Walks the records once: checks each one's framing and name offset, records where it starts, indexes names. */
    private static Btf frame(int[] words, byte[] strings) throws BtfException {
        int[] starts = new int[words.length / TYPE_WORDS + 1];
        starts[0] = -1;
        long[] keys = new long[1024];
        int keyCount = 0;
        int id = 0;
        for (int pos = 0; pos < words.length; ) {
            id++;
            if (words.length - pos < TYPE_WORDS) {
                throw new BtfException("type " + id + " at type section offset " + pos * 4L + ": only "
                        + (words.length - pos) * 4 + " bytes left, a btf_type needs 12");
            }
            int nameOffset = words[pos];
            int info = words[pos + 1];
            Kind kind = Kind.ofCode((info >>> 24) & 0x1f);
            if (kind == null) {
                throw new BtfException("type " + id + " at type section offset " + pos * 4L + ": unknown kind "
                        + ((info >>> 24) & 0x1f));
            }
            int vlen = info & 0xffff;
            int trailing = trailingWords(kind, vlen);
            if (trailing > words.length - pos - TYPE_WORDS) {
                throw new BtfException("type " + id + " (" + kind + ", vlen " + vlen + ") at type section offset "
                        + pos * 4L + " needs " + trailing * 4L + " bytes after its header, only "
                        + (words.length - pos - TYPE_WORDS) * 4L + " remain");
            }
            if (Integer.compareUnsigned(nameOffset, strings.length) >= 0) {
                throw new BtfException("type " + id + ": name offset " + Integer.toUnsignedString(nameOffset)
                        + " is outside the " + strings.length + "-byte string section");
            }
            starts[id] = pos;
            if (nameOffset != 0 && kind != Kind.DECL_TAG && kind != Kind.TYPE_TAG) {
                if (keyCount == keys.length) {
                    keys = Arrays.copyOf(keys, keyCount * 2);
                }
                keys[keyCount++] = key(hashName(strings, nameOffset, id), id);
            }
            pos += TYPE_WORDS + trailing;
        }
        long[] index = Arrays.copyOf(keys, keyCount);
        Arrays.sort(index);
        return new Btf(words, Arrays.copyOf(starts, id + 1), strings, index);
    }

    private static int trailingWords(Kind kind, int vlen) {
        return switch (kind) {
            case INT, VAR, DECL_TAG -> 1;
            case ARRAY -> 3;
            case STRUCT, UNION, DATASEC, ENUM64 -> 3 * vlen;
            case ENUM, FUNC_PROTO -> 2 * vlen;
            default -> 0;
        };
    }

    private static long key(int hash, int id) {
        return (long) hash << 32 | id;
    }

    private static int hashName(byte[] strings, int offset, int id) throws BtfException {
        int hash = 0;
        for (int i = offset; strings[i] != 0; i++) {
            if (i - offset == MAX_NAME_LENGTH) {
                throw new BtfException("type " + id + ": name at string offset " + offset + " is longer than "
                        + MAX_NAME_LENGTH + " bytes");
            }
            hash = 31 * hash + (strings[i] & 0xff);
        }
        return hash;
    }

    private static int hash(byte[] name) {
        int hash = 0;
        for (byte b : name) {
            hash = 31 * hash + (b & 0xff);
        }
        return hash;
    }

    /** Number of types, not counting void; valid ids are 0..typeCount(). */
    public int typeCount() {
        return typeStart.length - 1;
    }

    /** The lowest id of a type named {@code name} of {@code kind}; DECL_TAG and TYPE_TAG are never found. */
    public OptionalInt typeId(String name, Kind kind) {
        byte[] wanted = name.getBytes(StandardCharsets.UTF_8);
        int hash = hash(wanted);
        int i = Arrays.binarySearch(nameIndex, key(hash, 0));
        for (i = i < 0 ? -i - 1 : i; i < nameIndex.length && (int) (nameIndex[i] >>> 32) == hash; i++) {
            int id = (int) nameIndex[i];
            if (kindOf(id) == kind && stringEquals(words[typeStart[id]], wanted)) {
                return OptionalInt.of(id);
            }
        }
        return OptionalInt.empty();
    }

    /** Type {@code id} with typedefs and qualifiers stripped. */
    public TypeRef type(int id) throws BtfException {
        if (Integer.compareUnsigned(id, typeStart.length) >= 0) {
            throw new BtfException("type id " + Integer.toUnsignedString(id) + " is out of range, there are "
                    + typeCount() + " types");
        }
        return typeRef(id, 0);
    }

    /** The layout of {@code struct name}; fails if there is none. */
    public StructLayout struct(String name) throws BtfException {
        OptionalInt id = typeId(name, Kind.STRUCT);
        if (id.isEmpty()) {
            throw new BtfException("BTF has no struct " + name);
        }
        long size = sizeField(id.getAsInt());
        if (size > Integer.MAX_VALUE) {
            throw new BtfException("struct " + name + " (type " + id.getAsInt() + ") claims " + size + " bytes");
        }
        return new StructLayout(this, id.getAsInt(), name, (int) size);
    }

    public int sizeOf(String structName) throws BtfException {
        return struct(structName).size();
    }

    /**
     * The value of {@code enumerator} in the enum (or 64-bit enum) named {@code enumName}, or in any enum, named or
     * anonymous, when {@code enumName} is null (the lowest type id wins). Unsigned 64-bit values above
     * {@link Long#MAX_VALUE} come back as their two's complement bits. An ENUM without kind_flag is unsigned, as the
     * format says; BTF from before Linux 6.0 never sets the flag, so its negative values come back as u32.
     */
    public OptionalLong enumValue(String enumName, String enumerator) throws BtfException {
        byte[] wanted = enumerator.getBytes(StandardCharsets.UTF_8);
        if (enumName != null) {
            for (Kind kind : new Kind[] {Kind.ENUM, Kind.ENUM64}) {
                OptionalInt id = typeId(enumName, kind);
                OptionalLong value = id.isPresent() ? enumeratorValue(id.getAsInt(), wanted) : OptionalLong.empty();
                if (value.isPresent()) {
                    return value;
                }
            }
            return OptionalLong.empty();
        }
        for (int id = 1; id < typeStart.length; id++) {
            Kind kind = kindOf(id);
            if (kind == Kind.ENUM || kind == Kind.ENUM64) {
                OptionalLong value = enumeratorValue(id, wanted);
                if (value.isPresent()) {
                    return value;
                }
            }
        }
        return OptionalLong.empty();
    }

    private OptionalLong enumeratorValue(int id, byte[] wanted) throws BtfException {
        boolean wide = kindOf(id) == Kind.ENUM64;
        int stride = wide ? 3 : 2;
        for (int i = 0; i < vlen(id); i++) {
            if (nameEquals(data(id, i * stride), wanted, id)) {
                int low = data(id, i * stride + 1);
                if (wide) {
                    return OptionalLong.of((long) data(id, i * stride + 2) << 32 | Integer.toUnsignedLong(low));
                }
                return OptionalLong.of(kindFlag(id) ? low : Integer.toUnsignedLong(low));
            }
        }
        return OptionalLong.empty();
    }

    // Accessors for StructLayout. Ids passed in are valid: they come from the index or from checkedRef.

    Kind kindOf(int id) {
        return id == 0 ? Kind.VOID : Kind.ofCode((words[typeStart[id] + 1] >>> 24) & 0x1f);
    }

    int vlen(int id) {
        return words[typeStart[id] + 1] & 0xffff;
    }

    boolean kindFlag(int id) {
        return words[typeStart[id] + 1] < 0;
    }

    /** The u32 after name and info: a size for INT/STRUCT/UNION/ENUM/ENUM64/FLOAT/DATASEC, else a type id. */
    long sizeField(int id) {
        return Integer.toUnsignedLong(words[typeStart[id] + 2]);
    }

    /** Word {@code index} of the kind-specific data after type {@code id}'s btf_type; in bounds by the framing. */
    int data(int id, int index) {
        return words[typeStart[id] + TYPE_WORDS + index];
    }

    /** {@code target}, read from type {@code from}'s data, checked to be a type id. */
    int checkedRef(int from, int target) throws BtfException {
        if (Integer.compareUnsigned(target, typeStart.length) >= 0) {
            throw new BtfException("type " + from + " refers to type id " + Integer.toUnsignedString(target)
                    + ", but there are only " + typeCount() + " types");
        }
        return target;
    }

    /** Follows typedefs and qualifiers from {@code id} to the type they stand for. */
    int stripModifiers(int id) throws BtfException {
        int current = id;
        for (int depth = 0; current != 0 && kindOf(current).isModifier(); depth++) {
            if (depth == MAX_DEPTH) {
                throw new BtfException("type " + id + ": more than " + MAX_DEPTH
                        + " typedefs and qualifiers in a row (a cycle?)");
            }
            current = checkedRef(current, words[typeStart[current] + 2]);
        }
        return current;
    }

    TypeRef typeRef(int id, int depth) throws BtfException {
        if (depth > MAX_DEPTH) {
            throw new BtfException("type " + id + ": pointers and arrays nest more than " + MAX_DEPTH
                    + " deep (a cycle?)");
        }
        int bare = stripModifiers(id);
        Kind kind = kindOf(bare);
        return switch (kind) {
            case VOID -> new TypeRef(0, Kind.VOID, "", 0, null, 0);
            case PTR -> new TypeRef(bare, kind, name(bare), POINTER_SIZE,
                    typeRef(checkedRef(bare, words[typeStart[bare] + 2]), depth + 1), 0);
            case ARRAY -> {
                TypeRef element = typeRef(checkedRef(bare, data(bare, 0)), depth + 1);
                long count = Integer.toUnsignedLong(data(bare, 2));
                yield new TypeRef(bare, kind, name(bare), multiply(count, element.size(), bare), element, count);
            }
            case INT, STRUCT, UNION, ENUM, ENUM64, FLOAT, DATASEC ->
                    new TypeRef(bare, kind, name(bare), sizeField(bare), null, 0);
            default -> new TypeRef(bare, kind, name(bare), 0, null, 0);
        };
    }

    static long multiply(long a, long b, int id) throws BtfException {
        long product = a * b;
        if (Math.multiplyHigh(a, b) != 0 || product < 0) {
            throw new BtfException("type " + id + ": size " + a + " * " + b + " overflows");
        }
        return product;
    }

    static long add(long a, long b, int id) throws BtfException {
        long sum = a + b;
        if (a < 0 || b < 0 || sum < 0) {
            throw new BtfException("type " + id + ": offset " + a + " + " + b + " overflows");
        }
        return sum;
    }

    String name(int id) throws BtfException {
        return string(words[typeStart[id]], id);
    }

    private String string(int offset, int id) throws BtfException {
        checkStringOffset(offset, id);
        int end = offset;
        while (strings[end] != 0) {
            if (++end - offset > MAX_NAME_LENGTH) {
                throw new BtfException("type " + id + ": name at string offset " + offset + " is longer than "
                        + MAX_NAME_LENGTH + " bytes");
            }
        }
        return new String(strings, offset, end - offset, StandardCharsets.UTF_8);
    }

    /** Whether the string at {@code offset}, which type {@code id} refers to, is {@code wanted}. */
    boolean nameEquals(int offset, byte[] wanted, int id) throws BtfException {
        checkStringOffset(offset, id);
        return stringEquals(offset, wanted);
    }

    private void checkStringOffset(int offset, int id) throws BtfException {
        if (Integer.compareUnsigned(offset, strings.length) >= 0) {
            throw new BtfException("type " + id + ": string offset " + Integer.toUnsignedString(offset)
                    + " is outside the " + strings.length + "-byte string section");
        }
    }

    /** Requires {@code offset} inside {@link #strings}; the section's final NUL stops every comparison. */
    private boolean stringEquals(int offset, byte[] wanted) {
        if (wanted.length >= strings.length - offset) {
            return false;
        }
        for (int i = 0; i < wanted.length; i++) {
            if (strings[offset + i] != wanted[i]) {
                return false;
            }
        }
        return strings[offset + wanted.length] == 0;
    }
}
