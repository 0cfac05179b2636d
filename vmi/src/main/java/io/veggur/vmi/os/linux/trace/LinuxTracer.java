package io.veggur.vmi.os.linux.trace;

import io.veggur.protocol.Event;
import io.veggur.protocol.Register;
import io.veggur.vmi.DebugHandler;
import io.veggur.vmi.IntrospectionSession;
import io.veggur.vmi.os.linux.LinuxKernel;
import io.veggur.vmi.os.linux.LinuxTask;
import io.veggur.vmi.paging.VirtualMemory;
import io.veggur.vmi.symbols.kallsyms.KernelSymbols;
import java.io.IOException;
import java.util.Map;
import java.util.OptionalLong;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Function-level tracing of a Linux guest over one introspection session: handlers on kernel functions by name, at
 * their entry and at their return, with the task that was running. Symbols come from the guest's kallsyms, the
 * current task from the per-CPU {@code current_task} (or {@code pcpu_hot}, 6.2+) through GS_BASE, which holds the
 * CPU's per-CPU area in kernel mode.
 *
 * <p>Returns are caught with a breakpoint on the return address, read from the stack at entry; a return belongs to the
 * entry whose vCPU and stack pointer (entry RSP + 8) it has, so recursion and other callers through the same return
 * address are told apart. Handlers run one at a time on the session's debug thread; the VM waits meanwhile.
 */
public final class LinuxTracer {
    /** The page-table address in CR3 (bits 12-51), without flags and PCID. */
    private static final long CR3_ADDRESS = 0x000f_ffff_ffff_f000L;

    /** What a handler is told: the vCPU, its registers, and the task that was running. */
    public record Hit(int vcpu, Map<Register, Long> registers, LinuxTask task) {
        public long register(Register register) {
            return registers.getOrDefault(register, 0L);
        }
    }

    @FunctionalInterface
    public interface EntryHandler {
        void onEntry(Hit hit) throws IOException;
    }

    /** Sees the function's return value (RAX) and may replace it (write role). */
    @FunctionalInterface
    public interface ReturnHandler {
        OptionalLong onReturn(Hit hit, long returnValue) throws IOException;
    }

    private record Call(int vcpu, long stackPointer) {}

    private final IntrospectionSession session;
    private final LinuxKernel kernel;
    private final KernelSymbols symbols;
    private final long currentTaskOffset;
    private final Map<Integer, EntryHandler> entries = new ConcurrentHashMap<>();
    private final Map<Long, Integer> returnBreakpoints = new ConcurrentHashMap<>();
    private final Map<Call, ReturnHandler> returning = new ConcurrentHashMap<>();

    public LinuxTracer(IntrospectionSession session, LinuxKernel kernel, KernelSymbols symbols) {
        this.session = session;
        this.kernel = kernel;
        this.symbols = symbols;
        this.currentTaskOffset = symbols.address("current_task").orElseGet(() -> symbols.address("pcpu_hot")
                .orElseThrow(() -> new IllegalArgumentException("the kernel has neither current_task nor pcpu_hot")));
        session.onDebugEvents(this::dispatch);
    }

    public LinuxKernel kernel() {
        return kernel;
    }

    public long address(String symbol) {
        return symbols.address(symbol).orElseThrow(() -> new IllegalArgumentException("no kernel symbol '" + symbol + "'"));
    }

    /**
     * The virtual address to break on for code at a guest-physical address. The gdbstub breaks on virtual addresses
     * only; kernel code runs through the image mapping, so this works for physical addresses inside the kernel image.
     */
    public long addressOfPhysical(long physicalAddress) {
        return symbols.imageVirtual(physicalAddress);
    }

    public boolean hasSymbol(String symbol) {
        return symbols.address(symbol).isPresent();
    }

    /** Calls {@code handler} at every entry of a kernel function, e.g. {@code onEntry("__x64_sys_getpid", h)}. */
    public int onEntry(String function, EntryHandler handler) throws IOException {
        return onEntry(address(function), 0, handler);
    }

    /** Calls {@code handler} at every return of a kernel function, with its return value. */
    public int onReturn(String function, ReturnHandler handler) throws IOException {
        return onReturn(address(function), 0, handler);
    }

    /**
     * Calls {@code handler} at every entry of the function at {@code address} (see {@link #address}); with a
     * {@code pageTableRoot}, only while that address space is active (0: any).
     */
    public int onEntry(long address, long pageTableRoot, EntryHandler handler) throws IOException {
        int id = session.setBreakpoint(address, pageTableRoot);
        entries.put(id, handler);
        return id;
    }

    /** Calls {@code handler} at every return of the function at {@code address}, with its return value. */
    public int onReturn(long address, long pageTableRoot, ReturnHandler handler) throws IOException {
        return onEntry(address, pageTableRoot, hit -> {
            long stackPointer = hit.register(Register.RSP);
            long returnAddress = kernel.kernelMemory().readLong(stackPointer);
            returning.put(new Call(hit.vcpu(), stackPointer + 8), handler);
            if (!returnBreakpoints.containsKey(returnAddress)) {
                returnBreakpoints.put(returnAddress, session.setBreakpoint(returnAddress, pageTableRoot));
            }
        });
    }

    /** The task running on the vCPU of a hit (in kernel mode: GS_BASE is the per-CPU area). */
    public LinuxTask currentTask(Map<Register, Long> registers) throws IOException {
        long perCpu = registers.getOrDefault(Register.GS_BASE, 0L);
        return kernel.task(kernel.kernelMemory().readLong(perCpu + currentTaskOffset));
    }

    /**
     * The address space of a hit in kernel code: the interrupted process's user memory and the kernel (with PTI,
     * kernel mode runs on the process's kernel PGD, which maps both).
     */
    public VirtualMemory addressSpace(Map<Register, Long> registers) {
        return kernel.addressSpace(registers.getOrDefault(Register.CR3, 0L) & CR3_ADDRESS);
    }

    private DebugHandler.Resolution dispatch(Event.Debug event) throws IOException {
        EntryHandler entry = entries.get(event.breakpointId());
        if (entry != null) {
            entry.onEntry(new Hit(event.vcpu(), event.registers(), currentTask(event.registers())));
            return DebugHandler.Resolution.proceed();
        }
        ReturnHandler handler = returning.remove(new Call(event.vcpu(), event.registers().getOrDefault(Register.RSP, 0L)));
        if (handler != null) {
            long value = event.registers().getOrDefault(Register.RAX, 0L);
            OptionalLong replacement = handler.onReturn(new Hit(event.vcpu(), event.registers(),
                    currentTask(event.registers())), value);
            if (replacement.isPresent()) {
                return DebugHandler.Resolution.proceedWith(Map.of(Register.RAX, replacement.getAsLong()));
            }
        }
        return DebugHandler.Resolution.proceed();
    }
}
