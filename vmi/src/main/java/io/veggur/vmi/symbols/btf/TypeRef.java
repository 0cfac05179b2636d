package io.veggur.vmi.symbols.btf;

/**
 * A type with its typedefs and qualifiers (typedef, const, volatile, restrict, type_tag) stripped. Pointers and
 * arrays are resolved one level further into {@link #target()}, which is itself stripped.
 *
 * @param id           BTF type id of the stripped type (0 for void)
 * @param kind         its kind
 * @param name         its name, "" if anonymous (e.g. the struct behind {@code kuid_t})
 * @param size         size in bytes: pointers are {@value Btf#POINTER_SIZE}, arrays are count times element size;
 *                     0 for void, forward declarations and functions
 * @param target       for {@link Kind#PTR} the pointee, for {@link Kind#ARRAY} the element type, otherwise null
 * @param elementCount for {@link Kind#ARRAY} the number of elements (0 for a flexible array), otherwise 0
 */
public record TypeRef(int id, Kind kind, String name, long size, TypeRef target, long elementCount) {

    /** True if this is a pointer to the struct named {@code structName}. */
    public boolean isPointerToStruct(String structName) {
        return kind == Kind.PTR && target.kind == Kind.STRUCT && target.name.equals(structName);
    }
}
