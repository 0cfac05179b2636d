package io.veggur.vmi.symbols.kallsyms;

/**
 * The kallsyms arrays of one kernel as found in guest memory, with the symbol addresses already decoded (the locator
 * needs them to tell layouts apart). Addresses are in kallsyms order, which is ascending.
 *
 * @param namesWindow    a copy holding all of kallsyms_names
 * @param bigLengths     entry lengths of 128 and more take two bytes (ULEB128, since 6.1)
 * @param relativeBase   kallsyms_relative_base as the running kernel sees it (KASLR applied)
 * @param absolutePercpu addresses use the CONFIG_KALLSYMS_ABSOLUTE_PERCPU encoding
 */
record KallsymsTables(Layout layout, TokenTable tokens, long markersAddress, PhysicalWindow namesWindow,
                      long namesAddress, int count, boolean bigLengths, long offsetsAddress, long relativeBase,
                      boolean absolutePercpu, long[] addresses) {
    /** Longest name (KSYM_NAME_LEN is 512 since 6.1). */
    static final int MAX_NAME_BYTES = 1024;
    /** All decoded names together; a Debian kernel's take 2 to 4 MB. */
    static final int MAX_DECODED_BYTES = 64 << 20;

    /** Names and type letters of all symbols. */
    record Decoded(SymbolNames names, byte[] types) {
    }

    /**
     * Expands every entry the way kernel/kallsyms.c does: the concatenated token strings, whose first character is
     * the symbol type (nm's letter) and the rest the name. Null if an entry expands to something no kernel emits: an
     * empty name, a type that is not a letter, or a name longer than {@link #MAX_NAME_BYTES}.
     */
    Decoded decodeNames() {
        byte[][] strings = tokens.tokens();
        byte[] types = new byte[count];
        long namesBytes = markersAddress - namesAddress;
        SymbolNames.Builder names = new SymbolNames.Builder(count, (int) Math.min(2 * namesBytes, MAX_DECODED_BYTES),
                MAX_DECODED_BYTES);
        long position = namesAddress;
        for (int i = 0; i < count; i++) {
            long next = KallsymsLocator.nextEntry(namesWindow, position, bigLengths);
            if (next < 0) {
                return null;
            }
            int type = -1;
            for (long at = position + KallsymsLocator.headerBytes(namesWindow, position, bigLengths); at < next; at++) {
                for (byte b : strings[namesWindow.u8(at)]) {
                    if (type < 0) {
                        type = b;
                    } else if (names.current() == MAX_NAME_BYTES || !names.append(b)) {
                        return null;
                    }
                }
            }
            int letter = type | 0x20;
            if (names.current() == 0 || letter < 'a' || letter > 'z') {
                return null;
            }
            types[i] = (byte) type;
            names.endName();
            position = next;
        }
        return new Decoded(names.build(), types);
    }
}
