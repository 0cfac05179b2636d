package io.veggur.vmi.symbols.btf;

/**
 * BTF type kinds. The ordinal is the kind's number in {@code btf_type.info} bits 24-28, so the order must not change.
 * {@link #VOID} stands for type id 0, which the type section never contains.
 */
public enum Kind {
    VOID, INT, PTR, ARRAY, STRUCT, UNION, ENUM, FWD, TYPEDEF, VOLATILE, CONST, RESTRICT, FUNC, FUNC_PROTO, VAR,
    DATASEC, FLOAT, DECL_TAG, TYPE_TAG, ENUM64;

    private static final Kind[] BY_CODE = values();

    /** The kind with BTF number {@code code}, or null if the number is not a kind (0 is not valid in the section). */
    static Kind ofCode(int code) {
        return code > 0 && code < BY_CODE.length ? BY_CODE[code] : null;
    }

    /** True for kinds that only qualify or rename another type: the layout is that of the type they point to. */
    boolean isModifier() {
        return this == TYPEDEF || this == VOLATILE || this == CONST || this == RESTRICT || this == TYPE_TAG;
    }

    boolean isComposite() {
        return this == STRUCT || this == UNION;
    }
}
