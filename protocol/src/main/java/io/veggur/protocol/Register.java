package io.veggur.protocol;

/**
 * The x86-64 vCPU registers carried by {@link Reply.Registers}, in wire order. The host fills them by name from
 * whatever layout the hypervisor describes; the wire order is ours and fixed per protocol version. Segment registers
 * carry selectors only.
 */
public enum Register {
    RAX, RBX, RCX, RDX, RSI, RDI, RBP, RSP, R8, R9, R10, R11, R12, R13, R14, R15,
    RIP, RFLAGS,
    CS, SS, DS, ES, FS, GS,
    FS_BASE, GS_BASE, KERNEL_GS_BASE,
    CR0, CR2, CR3, CR4, CR8, EFER;

    /** Lower-case name as used in JSON output and by the gdbstub target description (apart from a few aliases). */
    public String displayName() {
        return name().toLowerCase(java.util.Locale.ROOT);
    }
}
