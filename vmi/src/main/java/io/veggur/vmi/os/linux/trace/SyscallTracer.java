package io.veggur.vmi.os.linux.trace;

import io.veggur.protocol.Register;
import io.veggur.vmi.os.linux.LinuxTask;
import io.veggur.vmi.paging.VirtualMemory;
import java.io.IOException;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;

/**
 * System calls as the guest makes them: a breakpoint on each traced call's {@code __x64_sys_NAME} entry, which gets
 * the caller's saved registers ({@code struct pt_regs *} in RDI). Arguments are read from pt_regs, whose layout is
 * the x86-64 ABI's (the ptrace register set) and has not changed since 2.6; strings and argument vectors are read
 * from the caller's own address space (CR3 at the hit), bounded, and reported as unreadable rather than guessed.
 */
public final class SyscallTracer {
    /** The calls traced by default: process creation, program execution, file opening and process exit. */
    public static final List<String> DEFAULT_CALLS = List.of("execve", "execveat", "clone", "clone3", "fork", "vfork",
            "openat", "exit_group");
    static final int MAX_ARGV = 64;
    static final int MAX_STRING = 4096;
    // Offsets in struct pt_regs (x86-64 ABI).
    private static final int R10 = 56, R9 = 64, R8 = 72, DX = 96, SI = 104, DI = 112;

    /** One call: who made it, its name, its six raw arguments, and what could be decoded of them. */
    public record Call(int vcpu, int pid, int tid, String comm, String name, long[] args, Map<String, Object> decoded) {}

    private SyscallTracer() {}

    /**
     * Traces {@code names} (without the {@code __x64_sys_} prefix); {@code pageTableRoot} limits it to one process
     * (0: all). Returns the names that this kernel does not have.
     */
    public static List<String> trace(LinuxTracer tracer, List<String> names, long pageTableRoot, Consumer<Call> sink)
            throws IOException {
        List<String> missing = new ArrayList<>();
        for (String name : names) {
            String symbol = "__x64_sys_" + name;
            if (!tracer.hasSymbol(symbol)) {
                missing.add(name);
                continue;
            }
            tracer.onEntry(tracer.address(symbol), pageTableRoot, hit -> sink.accept(decode(tracer, name, hit)));
        }
        return missing;
    }

    private static Call decode(LinuxTracer tracer, String name, LinuxTracer.Hit hit) throws IOException {
        VirtualMemory kernel = tracer.kernel().kernelMemory();
        long regs = hit.register(Register.RDI);
        long[] args = {kernel.readLong(regs + DI), kernel.readLong(regs + SI), kernel.readLong(regs + DX),
                kernel.readLong(regs + R10), kernel.readLong(regs + R8), kernel.readLong(regs + R9)};
        VirtualMemory user = tracer.addressSpace(hit.registers());
        Map<String, Object> decoded = new LinkedHashMap<>();
        switch (name) {
            case "execve" -> {
                decoded.put("path", string(user, args[0]));
                decoded.put("argv", argv(user, args[1]));
            }
            case "execveat" -> {
                decoded.put("path", string(user, args[1]));
                decoded.put("argv", argv(user, args[2]));
            }
            case "open" -> decoded.put("path", string(user, args[0]));
            case "openat" -> {
                decoded.put("dirfd", (int) args[0]);
                decoded.put("path", string(user, args[1]));
                decoded.put("flags", "0x" + Long.toHexString(args[2]));
            }
            case "clone" -> decoded.put("flags", "0x" + Long.toHexString(args[0]));
            case "exit", "exit_group" -> decoded.put("status", (int) args[0]);
            default -> { }
        }
        LinuxTask task = hit.task();
        return new Call(hit.vcpu(), task.tgid(), task.pid(), task.name(), name, args, decoded);
    }

    private static String string(VirtualMemory memory, long address) {
        try {
            return memory.readCString(address, MAX_STRING);
        } catch (IOException e) {
            return "<unreadable at 0x" + Long.toHexString(address) + ">";
        }
    }

    private static List<String> argv(VirtualMemory memory, long address) {
        List<String> argv = new ArrayList<>();
        try {
            for (int i = 0; i < MAX_ARGV; i++) {
                long pointer = memory.readLong(address + 8L * i);
                if (pointer == 0) {
                    return argv;
                }
                argv.add(string(memory, pointer));
            }
            argv.add("...");
        } catch (IOException e) {
            argv.add("<unreadable>");
        }
        return argv;
    }
}
