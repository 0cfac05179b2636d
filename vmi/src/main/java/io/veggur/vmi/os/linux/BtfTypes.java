package io.veggur.vmi.os.linux;

import io.veggur.vmi.symbols.btf.Btf;
import io.veggur.vmi.symbols.btf.BtfException;

/** {@link TypeInfo} over the kernel's own BTF. */
record BtfTypes(Btf btf) implements TypeInfo {
    @Override
    public int size(String struct) throws BtfException {
        return btf.struct(struct).size();
    }

    @Override
    public int offset(String struct, String path) throws BtfException {
        return btf.struct(struct).member(path).byteOffset();
    }

    @Override
    public int arrayLength(String struct, String path) throws BtfException {
        return (int) btf.struct(struct).member(path).type().elementCount();
    }

    @Override
    public boolean has(String struct, String path) throws BtfException {
        return btf.struct(struct).hasMember(path);
    }
}
