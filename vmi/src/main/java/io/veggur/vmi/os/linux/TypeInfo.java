package io.veggur.vmi.os.linux;

import java.io.IOException;

/**
 * Structure layouts from some debug-information source (the kernel's BTF, or an ISF file). Paths are dotted member
 * names through embedded structs (never through pointers); members of anonymous structs and unions are found as if
 * they belonged to the enclosing struct, as in C.
 */
interface TypeInfo {
    int size(String struct) throws IOException;

    int offset(String struct, String path) throws IOException;

    /** Element count of an array member. */
    int arrayLength(String struct, String path) throws IOException;

    boolean has(String struct, String path) throws IOException;
}
