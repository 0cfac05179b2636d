package io.veggur.cli;

import io.veggur.protocol.Event;
import io.veggur.protocol.Register;
import io.veggur.vmi.DebugHandler;
import io.veggur.vmi.IntrospectionSession;
import io.veggur.vmi.os.linux.KernelDiscovery;
import io.veggur.vmi.os.linux.LinuxKernel;
import io.veggur.vmi.os.linux.LinuxTask;
import io.veggur.vmi.os.linux.ProfileCache;
import io.veggur.vmi.symbols.kallsyms.KallsymsFinder;
import io.veggur.vmi.symbols.kallsyms.KernelSymbols;
import java.io.IOException;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/**
 * {@code veggur vmi break}: a breakpoint on a kernel function (by kallsyms name, read from guest memory) or address,
 * one line per hit. With {@code --set-return} the function runs as usual and the caller sees VALUE instead of what it
 * returned: a second breakpoint on the return address (matched by vCPU and stack pointer) sets RAX there.
 */
@Command(name = "break", description = "Break on a kernel function or address and print each hit (trace role); "
        + "--set-return changes what the function returns (write role).")
final class BreakCommand implements Callable<Integer> {
    @Mixin Target target;
    @Parameters(paramLabel = "SYMBOL|ADDR") String where;
    @Option(names = "--count", defaultValue = "10", description = "Stop after this many hits (default 10).") int count;
    @Option(names = "--seconds", defaultValue = "30", description = "Stop after this long at the latest (default 30).") int seconds;
    @Option(names = "--pid", description = "Only hits while this process's address space is active.") Integer pid;
    @Option(names = "--set-return", paramLabel = "VALUE", description = "Make the function return VALUE.") String setReturn;
    @Option(names = "--json") boolean json;

    /** A call on its way back: the vCPU and the stack pointer the return address will leave behind. */
    private record Call(int vcpu, long stackPointer) {}

    @Override
    public Integer call() throws Exception {
        if (count < 1 || seconds < 1) {
            throw new IllegalArgumentException("--count and --seconds must be positive");
        }
        Long returnValue = setReturn == null ? null : Sizes.parseAddress(setReturn);
        try (IntrospectionSession session = target.connect()) {
            var memory = session.physicalMemory();
            LinuxKernel kernel = KernelDiscovery.discover(memory, ProfileCache.fromEnvironment());
            long address = address(memory);
            long root = pid == null ? 0 : pageTableRoot(kernel, pid);
            CountDownLatch done = new CountDownLatch(count);
            AtomicInteger hits = new AtomicInteger();
            AtomicLong expired = new AtomicLong();
            Map<Call, Boolean> returning = new ConcurrentHashMap<>();
            int[] returnBreakpoint = {0};
            session.onDebugEvents(new DebugHandler() {
                @Override
                public Resolution onEvent(Event.Debug event) throws IOException {
                    long rip = event.registers().getOrDefault(Register.RIP, 0L);
                    long rsp = event.registers().getOrDefault(Register.RSP, 0L);
                    if (rip == address) {
                        if (hits.get() >= count) {
                            return Resolution.proceed();
                        }
                        print(hits.incrementAndGet(), event, null);
                        if (returnValue != null) {
                            long returnAddress = kernel.kernelMemory().readLong(rsp);
                            returning.put(new Call(event.vcpu(), rsp + 8), true);
                            synchronized (returnBreakpoint) {
                                if (returnBreakpoint[0] == 0) {
                                    returnBreakpoint[0] = session.setBreakpoint(returnAddress, root);
                                }
                            }
                        } else {
                            done.countDown();
                        }
                        return Resolution.proceed();
                    }
                    if (returning.remove(new Call(event.vcpu(), rsp)) != null) {
                        print(hits.get(), event, event.registers().getOrDefault(Register.RAX, 0L));
                        done.countDown();
                        return Resolution.proceedWith(Map.of(Register.RAX, returnValue));
                    }
                    return Resolution.proceed();
                }

                @Override
                public void expired(long eventId) {
                    expired.incrementAndGet();
                }
            });
            session.setBreakpoint(address, root);
            System.err.printf("veggur: breakpoint set at %s (%#x)%s%n", where, address, pid == null ? "" : " for process " + pid);
            System.err.flush();
            boolean finished = done.await(seconds, TimeUnit.SECONDS);
            if (!json) {
                System.out.println(hits.get() + " hits" + (finished ? "" : " (stopped after " + seconds + " s)")
                        + (expired.get() > 0 ? "; " + expired.get() + " events expired before this tool answered" : ""));
            }
        }
        return 0;
    }

    private long address(io.veggur.vmi.memory.PhysicalMemory memory) throws IOException {
        if (where.startsWith("0x")) {
            return Sizes.parseAddress(where);
        }
        KernelSymbols symbols = KallsymsFinder.find(memory);
        return symbols.address(where).orElseThrow(() -> new IllegalArgumentException("no kernel symbol '" + where + "'"));
    }

    private static long pageTableRoot(LinuxKernel kernel, int pid) throws IOException {
        for (LinuxTask task : kernel.processes().items()) {
            if (task.pid() == pid) {
                if (task.pageTableRoot() == 0) {
                    throw new IllegalArgumentException("process " + pid + " is a kernel thread (no address space of its own)");
                }
                return task.pageTableRoot();
            }
        }
        throw new IllegalArgumentException("no process " + pid + " in the guest");
    }

    private void print(int hit, Event.Debug event, Long returned) {
        Map<Register, Long> r = event.registers();
        if (json) {
            Map<String, Object> row = new LinkedHashMap<>();
            row.put("hit", hit);
            row.put("vcpu", event.vcpu());
            row.put("rip", r.getOrDefault(Register.RIP, 0L));
            row.put("cr3", r.getOrDefault(Register.CR3, 0L));
            for (Register register : new Register[] {Register.RDI, Register.RSI, Register.RDX, Register.RSP}) {
                row.put(register.name().toLowerCase(), r.getOrDefault(register, 0L));
            }
            if (returned != null) {
                row.put("returned", returned);
                row.put("replacedBy", Sizes.parseAddress(setReturn));
            }
            System.out.println(Json.write(row));
        } else if (returned != null) {
            System.out.printf("hit %d: returned %d, replaced by %s%n", hit, returned, setReturn);
        } else {
            System.out.printf("hit %d: vcpu %d rip %#x cr3 %#x rdi %#x rsi %#x rdx %#x%n", hit, event.vcpu(),
                    r.getOrDefault(Register.RIP, 0L), r.getOrDefault(Register.CR3, 0L), r.getOrDefault(Register.RDI, 0L),
                    r.getOrDefault(Register.RSI, 0L), r.getOrDefault(Register.RDX, 0L));
        }
        System.out.flush();
    }
}
