package io.veggur.vmi.memory;

import java.io.IOException;

/** A guest-physical range that is not entirely guest RAM. */
public final class OutOfRangeException extends IOException {
    public OutOfRangeException(long address, long length) {
        super("guest-physical range 0x%x+0x%x is not inside guest RAM".formatted(address, length));
    }
}
