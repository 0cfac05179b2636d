package io.veggur.vmi.symbols.btf;

/**
 * A member found by {@link StructLayout#member(String)}: where it lives relative to the start of the struct the path
 * was resolved from, and what it is.
 *
 * @param path         the path it was looked up by, e.g. {@code "se.exec_start"} or {@code "mem[2].size"}
 * @param bitOffset    offset in bits from the start of the outer struct
 * @param bitfieldSize width in bits if the member is a bitfield, else 0
 * @param type         the member's type with typedefs and qualifiers stripped
 */
public record Member(String path, long bitOffset, int bitfieldSize, TypeRef type) {

    /** Offset in bytes; fails for members that do not start on a byte boundary (bitfields usually don't). */
    public int byteOffset() throws BtfException {
        if ((bitOffset & 7) != 0) {
            throw new BtfException("member '" + path + "' is at bit offset " + bitOffset + ", not on a byte boundary");
        }
        long bytes = bitOffset >>> 3;
        if (bytes > Integer.MAX_VALUE) {
            throw new BtfException("member '" + path + "' is at byte offset " + bytes + ", too large");
        }
        return (int) bytes;
    }

    public boolean isBitfield() {
        return bitfieldSize != 0;
    }
}
