package io.veggur.vmi.symbols.btf;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/**
 * A struct's layout, looked up member by member on demand.
 *
 * <p>A member path is names joined by dots, each optionally followed by array indexes: {@code "se.exec_start"},
 * {@code "uid.val"}, {@code "mem[2].size"}. Each dot steps into an embedded struct or union, never through a pointer.
 * Members of anonymous structs and unions are found as if they were members of the enclosing type, as in C (kernels
 * built with randomized layouts wrap most of task_struct in one). An index steps to that array element; it is
 * checked against the element count, except for flexible arrays (count 0), whose bounds BTF does not know.
 *
 * <p>Offsets add up along the path: a member inside an anonymous union inside a struct is at the union's offset plus
 * its own. In a struct whose kind_flag is set, each member's {@code offset} word holds the bitfield width in bits
 * 24-31 and the bit offset in bits 0-23; otherwise it is all bit offset, and a bitfield is described by its INT
 * type's encoding (bits 0-7 width, bits 16-23 extra bit offset), which old compilers emitted.
 *
 * <p>A search visits at most {@value #VISIT_BUDGET} members and nests at most {@value Btf#MAX_DEPTH} anonymous
 * members deep, so corrupt data in which a struct contains itself fails instead of hanging.
 */
public final class StructLayout {
    private static final int VISIT_BUDGET = 1 << 20;

    private final Btf btf;
    private final int id;
    private final String name;
    private final int size;

    StructLayout(Btf btf, int id, String name, int size) {
        this.btf = btf;
        this.id = id;
        this.name = name;
        this.size = size;
    }

    public String name() {
        return name;
    }

    /** Size in bytes. */
    public int size() {
        return size;
    }

    /** The member at {@code path}; fails if there is none. */
    public Member member(String path) throws BtfException {
        Member member = find(path);
        if (member == null) {
            throw new BtfException("struct " + name + " has no member " + path);
        }
        return member;
    }

    /** Whether {@code path} names a member. Still fails on malformed BTF or a path through a non-struct. */
    public boolean hasMember(String path) throws BtfException {
        return find(path) != null;
    }

    @Override
    public String toString() {
        return "struct " + name + " (" + size + " bytes, type " + id + ")";
    }

    private record Segment(String name, byte[] utf8, int[] indexes) {}

    private record Hit(int typeId, long bitOffset, int bitfieldSize) {}

    private Member find(String path) throws BtfException {
        int[] budget = {VISIT_BUDGET};
        int typeId = id;
        long bitOffset = 0;
        int bitfieldSize = 0;
        String walked = name;
        for (Segment segment : parsePath(path)) {
            int composite = btf.stripModifiers(typeId);
            Kind kind = btf.kindOf(composite);
            if (!kind.isComposite()) {
                throw new BtfException("cannot find " + path + " in struct " + name + ": " + walked + " is "
                        + (kind == Kind.PTR ? "a pointer (paths do not follow pointers)" : "of kind " + kind));
            }
            Hit hit = search(composite, segment.utf8(), bitOffset, budget, 0);
            if (hit == null) {
                return null;
            }
            walked = walked + "." + segment.name();
            typeId = hit.typeId();
            bitOffset = hit.bitOffset();
            bitfieldSize = hit.bitfieldSize();
            for (int index : segment.indexes()) {
                int array = btf.stripModifiers(typeId);
                if (btf.kindOf(array) != Kind.ARRAY) {
                    throw new BtfException("cannot index " + walked + " in struct " + name + ": it is of kind "
                            + btf.kindOf(array));
                }
                long count = Integer.toUnsignedLong(btf.data(array, 2));
                if (count != 0 && index >= count) {
                    throw new BtfException("index " + index + " is out of bounds for " + walked + " in struct "
                            + name + ", which has " + count + " elements");
                }
                typeId = btf.checkedRef(array, btf.data(array, 0));
                long elementBits = Btf.multiply(btf.typeRef(typeId, 0).size(), 8, array);
                bitOffset = Btf.add(bitOffset, Btf.multiply(index, elementBits, array), array);
                bitfieldSize = 0;
                walked = walked + "[" + index + "]";
            }
        }
        return new Member(path, bitOffset, bitfieldSize, btf.typeRef(typeId, 0));
    }

    /** Depth-first through {@code composite}'s members, entering anonymous structs and unions in place. */
    private Hit search(int composite, byte[] wanted, long base, int[] budget, int depth) throws BtfException {
        if (depth > Btf.MAX_DEPTH) {
            throw new BtfException("type " + composite + ": anonymous members nest more than " + Btf.MAX_DEPTH
                    + " deep (a cycle?)");
        }
        boolean packed = btf.kindFlag(composite);
        for (int i = 0; i < btf.vlen(composite); i++) {
            if (--budget[0] < 0) {
                throw new BtfException("struct " + name + ": member search visited more than " + VISIT_BUDGET
                        + " members (cyclic anonymous members?)");
            }
            int nameOffset = btf.data(composite, 3 * i);
            int memberType = btf.checkedRef(composite, btf.data(composite, 3 * i + 1));
            int offset = btf.data(composite, 3 * i + 2);
            long bitOffset = Btf.add(base, packed ? offset & 0xffffff : Integer.toUnsignedLong(offset), composite);
            int bitfieldSize = packed ? offset >>> 24 : 0;
            if (nameOffset == 0) {
                int inner = btf.stripModifiers(memberType);
                if (btf.kindOf(inner).isComposite()) {
                    Hit hit = search(inner, wanted, bitOffset, budget, depth + 1);
                    if (hit != null) {
                        return hit;
                    }
                }
            } else if (btf.nameEquals(nameOffset, wanted, composite)) {
                int bare = btf.stripModifiers(memberType);
                if (!packed && btf.kindOf(bare) == Kind.INT) {
                    int encoding = btf.data(bare, 0);
                    int bits = encoding & 0xff;
                    int extraOffset = (encoding >>> 16) & 0xff;
                    if (extraOffset != 0 || bits != btf.sizeField(bare) * 8) {
                        bitOffset += extraOffset;
                        bitfieldSize = bits;
                    }
                }
                return new Hit(memberType, bitOffset, bitfieldSize);
            }
        }
        return null;
    }

    /** Splits {@code a.b[1][2].c}; a malformed path is the caller's mistake, not the guest's. */
    private static List<Segment> parsePath(String path) {
        List<Segment> segments = new ArrayList<>();
        for (String part : path.split("\\.", -1)) {
            int bracket = part.indexOf('[');
            String name = bracket < 0 ? part : part.substring(0, bracket);
            if (name.isEmpty() || name.indexOf(']') >= 0 || name.indexOf('\0') >= 0) {
                throw new IllegalArgumentException("bad member path '" + path + "'");
            }
            List<Integer> indexes = new ArrayList<>();
            for (int at = bracket; at >= 0 && at < part.length(); ) {
                int close = part.indexOf(']', at);
                if (part.charAt(at) != '[' || close < 0) {
                    throw new IllegalArgumentException("bad member path '" + path + "'");
                }
                String digits = part.substring(at + 1, close);
                if (digits.isEmpty() || digits.length() > 9 || !digits.chars().allMatch(c -> c >= '0' && c <= '9')) {
                    throw new IllegalArgumentException("bad index in member path '" + path + "'");
                }
                indexes.add(Integer.parseInt(digits));
                at = close + 1;
            }
            int[] indexArray = indexes.stream().mapToInt(Integer::intValue).toArray();
            segments.add(new Segment(name, name.getBytes(StandardCharsets.UTF_8), indexArray));
        }
        return segments;
    }
}
