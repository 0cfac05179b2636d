package io.veggur.vmi.symbols.btf;

import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Writes small BTF blobs for tests, record by record, exactly as the format lays them out. Each add method returns the
 * new type's id. {@link #record} adds arbitrary words, for blobs that are wrong on purpose.
 */
final class BtfBuilder {
    record M(String name, int type, int bitOffset, int bitfieldSize) {}

    static M member(String name, int type, int bitOffset) {
        return new M(name, type, bitOffset, 0);
    }

    static M bitfield(String name, int type, int bitOffset, int bits) {
        return new M(name, type, bitOffset, bits);
    }

    private final ByteArrayOutputStream strings = new ByteArrayOutputStream();
    private final Map<String, Integer> stringOffsets = new HashMap<>();
    private final List<int[]> records = new ArrayList<>();

    BtfBuilder() {
        string("");
    }

    int string(String s) {
        return stringOffsets.computeIfAbsent(s, k -> {
            int offset = strings.size();
            strings.writeBytes(k.getBytes(StandardCharsets.UTF_8));
            strings.write(0);
            return offset;
        });
    }

    static int info(Kind kind, int vlen, boolean kindFlag) {
        return (kindFlag ? 1 << 31 : 0) | kind.ordinal() << 24 | vlen;
    }

    /** The id the next added type will get, for types that refer forward. */
    int nextId() {
        return records.size() + 1;
    }

    /** Adds one record of raw words; returns its type id. */
    int record(int... words) {
        records.add(words.clone());
        return records.size();
    }

    private int add(String name, Kind kind, int vlen, boolean kindFlag, int sizeOrType, int... data) {
        int[] words = new int[3 + data.length];
        words[0] = string(name);
        words[1] = info(kind, vlen, kindFlag);
        words[2] = sizeOrType;
        System.arraycopy(data, 0, words, 3, data.length);
        return record(words);
    }

    int integer(String name, int size, boolean signed) {
        return add(name, Kind.INT, 0, false, size, (signed ? 1 << 24 : 0) | size * 8);
    }

    /** An INT with an explicit encoding word: bits 0-7 width, 16-23 bit offset, 24-27 signed/char/bool. */
    int integerEncoded(String name, int size, int bits, int bitOffset) {
        return add(name, Kind.INT, 0, false, size, bitOffset << 16 | bits);
    }

    int floating(String name, int size) {
        return add(name, Kind.FLOAT, 0, false, size);
    }

    int pointer(int target) {
        return add("", Kind.PTR, 0, false, target);
    }

    int array(int element, int indexType, int count) {
        return add("", Kind.ARRAY, 0, false, 0, element, indexType, count);
    }

    int struct(String name, int size, M... members) {
        return composite(Kind.STRUCT, name, size, members);
    }

    int union(String name, int size, M... members) {
        return composite(Kind.UNION, name, size, members);
    }

    private int composite(Kind kind, String name, int size, M... members) {
        boolean kindFlag = false;
        for (M m : members) {
            kindFlag |= m.bitfieldSize() != 0;
        }
        int[] data = new int[3 * members.length];
        for (int i = 0; i < members.length; i++) {
            M m = members[i];
            data[3 * i] = string(m.name());
            data[3 * i + 1] = m.type();
            data[3 * i + 2] = kindFlag ? m.bitfieldSize() << 24 | m.bitOffset() : m.bitOffset();
        }
        return add(name, kind, members.length, kindFlag, size, data);
    }

    /** An ENUM from name/value pairs: "A", 1, "B", -1, ... */
    int enumeration(String name, boolean signed, Object... pairs) {
        int[] data = new int[pairs.length];
        for (int i = 0; i < pairs.length; i += 2) {
            data[i] = string((String) pairs[i]);
            data[i + 1] = (Integer) pairs[i + 1];
        }
        return add(name, Kind.ENUM, pairs.length / 2, signed, 4, data);
    }

    /** An ENUM64 from name/value pairs: "A", 1L, ... */
    int enum64(String name, boolean signed, Object... pairs) {
        int[] data = new int[pairs.length / 2 * 3];
        for (int i = 0; i < pairs.length; i += 2) {
            long value = (Long) pairs[i + 1];
            data[i / 2 * 3] = string((String) pairs[i]);
            data[i / 2 * 3 + 1] = (int) value;
            data[i / 2 * 3 + 2] = (int) (value >>> 32);
        }
        return add(name, Kind.ENUM64, pairs.length / 2, signed, 8, data);
    }

    int forward(String name) {
        return add(name, Kind.FWD, 0, false, 0);
    }

    int typedef(String name, int type) {
        return add(name, Kind.TYPEDEF, 0, false, type);
    }

    int modifier(Kind kind, int type) {
        return add("", kind, 0, false, type);
    }

    int typeTag(String tag, int type) {
        return add(tag, Kind.TYPE_TAG, 0, false, type);
    }

    int funcProto(int returnType, int... parameterTypes) {
        int[] data = new int[2 * parameterTypes.length];
        for (int i = 0; i < parameterTypes.length; i++) {
            data[2 * i + 1] = parameterTypes[i];
        }
        return add("", Kind.FUNC_PROTO, parameterTypes.length, false, returnType, data);
    }

    int func(String name, int proto) {
        return add(name, Kind.FUNC, 0, false, proto);
    }

    int variable(String name, int type) {
        return add(name, Kind.VAR, 0, false, type, 1);
    }

    /** A DATASEC over variables: varType, offset, size, ... */
    int datasec(String name, int size, int... triples) {
        return add(name, Kind.DATASEC, triples.length / 3, false, size, triples);
    }

    int declTag(String tag, int type, int componentIndex) {
        return add(tag, Kind.DECL_TAG, 0, false, type, componentIndex);
    }

    /** The complete blob: header, type section, string section. */
    byte[] build() {
        int typeLength = 0;
        for (int[] r : records) {
            typeLength += 4 * r.length;
        }
        byte[] stringBytes = strings.toByteArray();
        ByteBuffer out = ByteBuffer.allocate(24 + typeLength + stringBytes.length).order(ByteOrder.LITTLE_ENDIAN);
        out.putShort((short) 0xEB9F).put((byte) 1).put((byte) 0).putInt(24);
        out.putInt(0).putInt(typeLength).putInt(typeLength).putInt(stringBytes.length);
        for (int[] r : records) {
            for (int w : r) {
                out.putInt(w);
            }
        }
        out.put(stringBytes);
        return out.array();
    }

    Btf parse() throws BtfException {
        return Btf.parse(ByteBuffer.wrap(build()));
    }
}
