package io.veggur.vmi.symbols.btf;

import java.io.IOException;

/**
 * BTF data is malformed, or does not contain what a query asked for. BTF read from a guest is untrusted, so every
 * defect in it surfaces as this checked exception, with the type id or byte offset where it was found.
 */
public final class BtfException extends IOException {
    public BtfException(String message) {
        super(message);
    }
}
