package io.veggur.vmi.os.linux;

import java.io.IOException;

/** Discovery failed; the message names the step that failed and what the user can do about it. */
public final class KernelDiscoveryException extends IOException {
    public KernelDiscoveryException(String step, String problem, String advice, Throwable cause) {
        super(step + " failed: " + problem + (advice == null ? "" : "; " + advice), cause);
    }
}
