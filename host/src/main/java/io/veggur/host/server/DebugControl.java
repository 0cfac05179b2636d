package io.veggur.host.server;

import io.veggur.protocol.Register;
import java.io.IOException;
import java.util.Map;
import java.util.function.IntConsumer;

/**
 * Breakpoints and stepping on the hypervisor side (QEMU's gdbstub), for the {@link DebugBridge}. A breakpoint hit or a
 * step stops the whole VM and holds it stopped ("a trap is held") until {@link #releaseTrap}; nothing else resumes it
 * meanwhile. Implementations are thread-safe.
 */
public interface DebugControl {
    /** Calls {@code listener} with the vCPU index on every trap, on the hypervisor connection's thread: keep it quick. */
    void onTrap(IntConsumer listener);

    /** Whether software breakpoints leave guest memory untouched (true under TCG; under KVM they write int3). */
    boolean breakpointsInvisible();

    void insertBreakpoint(long guestVirtual) throws IOException;

    void removeBreakpoint(long guestVirtual) throws IOException;

    /** Registers of a vCPU while the VM is stopped. */
    Map<Register, Long> stoppedRegisters(int vcpu) throws IOException;

    void writeRegisters(int vcpu, Map<Register, Long> values) throws IOException;

    /** One instruction on {@code vcpu}; returns when done, with a trap held. */
    void step(int vcpu) throws IOException;

    /** Ends the trap's hold; runs the VM again if {@code resume}. */
    void releaseTrap(boolean resume) throws IOException;
}
