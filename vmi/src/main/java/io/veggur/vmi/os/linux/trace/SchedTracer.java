package io.veggur.vmi.os.linux.trace;

import io.veggur.protocol.Register;
import io.veggur.vmi.os.linux.LinuxTask;
import java.io.IOException;
import java.util.function.Consumer;

/**
 * Context switches seen as address-space switches, the paper's CR3-write events: stock KVM's gdbstub has no CR3-write
 * exit, so this is a breakpoint on {@code switch_mm_irqs_off(prev_mm, next_mm, next_task)}, the one place that loads
 * CR3 for a task switch. It sees every switch to a task with another address space (user processes, and a kernel
 * thread's first lazy switch); it does not see switches between threads of one process or to kernel threads that keep
 * the previous mm (lazy TLB), which load no CR3 either, nor CR3 loads outside task switches (e.g. text poking).
 */
public final class SchedTracer {
    /** One switch on a vCPU: the task leaving and the task coming in. */
    public record Switch(int vcpu, int prevPid, String prevComm, int nextPid, int nextTid, String nextComm) {}

    private SchedTracer() {}

    public static void trace(LinuxTracer tracer, Consumer<Switch> sink) throws IOException {
        tracer.onEntry(tracer.address("switch_mm_irqs_off"), 0, hit -> {
            LinuxTask next = tracer.kernel().task(hit.register(Register.RDX));
            LinuxTask prev = hit.task();
            sink.accept(new Switch(hit.vcpu(), prev.tgid(), prev.name(), next.tgid(), next.pid(), next.name()));
        });
    }
}
