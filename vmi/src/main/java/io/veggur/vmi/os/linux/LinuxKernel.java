package io.veggur.vmi.os.linux;

import io.veggur.vmi.memory.PhysicalMemory;
import io.veggur.vmi.paging.PageTableWalker;
import io.veggur.vmi.paging.PagingMode;
import io.veggur.vmi.paging.VirtualMemory;
import java.io.IOException;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * A running (or imaged) Linux kernel, found in guest memory by {@link KernelDiscovery}, and its task and module
 * lists.
 *
 * <p>Every list walk is bounded ({@link #MAX_TASKS}, {@link #MAX_MODULES}) and remembers the nodes it visited, so a
 * cycle that does not pass through the list head, a pointer into unmapped memory, or a list that keeps growing ends
 * the walk with a {@link Listing#problem()} instead of a hang. Reads go through the kernel's own page tables
 * ({@code init_top_pgt}); the translation cache is the caller's to flush ({@link #invalidateCaches()}).
 */
public final class LinuxKernel {
    public static final int MAX_TASKS = 1 << 16;
    public static final int MAX_THREADS_PER_PROCESS = 1 << 14;
    public static final int MAX_MODULES = 1 << 12;
    private static final long PF_KTHREAD = 0x0020_0000L;
    private static final int TASK_REPORT = 0x7f;
    private static final int TASK_IDLE = 0x402;
    private static final String STATE_LETTERS = "RSDTtXZPI";

    private final KernelProfile profile;
    private final long textAddress;
    private final long textPhysical;
    private final PageTableWalker walker;
    private final VirtualMemory memory;
    private final DiscoveryReport report;

    LinuxKernel(KernelProfile profile, long textAddress, long textPhysical, PageTableWalker walker, long kernelRoot,
                DiscoveryReport report) {
        this.profile = profile;
        this.textAddress = textAddress;
        this.textPhysical = textPhysical;
        this.walker = walker;
        this.memory = new VirtualMemory(walker, kernelRoot);
        this.report = report;
    }

    /** The same kernel described by another profile (after the ISF path has identified the build). */
    LinuxKernel withProfile(KernelProfile identified) {
        return new LinuxKernel(identified, textAddress, textPhysical, walker, memory.root(), report);
    }

    public KernelProfile profile() {
        return profile;
    }

    /** The {@code linux_banner} string, e.g. "Linux version 6.1.0-56-cloud-amd64 (...) ...". */
    public String banner() {
        return profile.banner();
    }

    /** The release, e.g. "6.1.0-56-cloud-amd64". */
    public String release() {
        String[] words = profile.banner().split("\\s+");
        return words.length > 2 ? words[2] : "";
    }

    /** Virtual KASLR slide: how far {@code _text} sits above its link-time address 0xffffffff81000000. */
    public long kaslrSlide() {
        return textAddress - KernelImageFacts.DEFAULT_TEXT;
    }

    public long textAddress() {
        return textAddress;
    }

    /** Physical address where the kernel image ({@code _text}) was loaded. */
    public long textPhysical() {
        return textPhysical;
    }

    public PagingMode pagingMode() {
        return walker.mode();
    }

    public DiscoveryReport report() {
        return report;
    }

    /** The kernel's address space (kernel page tables). */
    /**
     * The address space whose top page table is at {@code pageTableRoot} (a process's, e.g. CR3 at a breakpoint):
     * user memory of that process, and the kernel.
     */
    public VirtualMemory addressSpace(long pageTableRoot) {
        return new VirtualMemory(walker, pageTableRoot);
    }

    public VirtualMemory kernelMemory() {
        return memory;
    }

    /** Forgets cached translations; call before each pass over a running guest. */
    public void invalidateCaches() {
        walker.invalidate();
    }

    /** Processes (thread-group leaders) in task-list order, without the idle task (pid 0), like /proc. */
    public Listing<LinuxTask> processes() throws IOException {
        KernelProfile.TaskLayout layout = profile.task();
        long head = symbol(profile.symbols().initTask()) + layout.tasks();
        List<LinuxTask> tasks = new ArrayList<>();
        String problem = walkList(head, layout.tasks(), MAX_TASKS, task -> tasks.add(task(task)));
        return new Listing<>(tasks, problem);
    }

    /** Every thread of every process, leaders included. */
    public Listing<LinuxTask> threads() throws IOException {
        KernelProfile.TaskLayout layout = profile.task();
        Listing<LinuxTask> processes = processes();
        List<LinuxTask> threads = new ArrayList<>();
        String problem = processes.problem();
        for (LinuxTask process : processes.items()) {
            long signal = memory.readLong(process.address() + layout.signal());
            String threadProblem = walkList(signal + profile.signalThreadHead(), layout.threadNode(),
                    MAX_THREADS_PER_PROCESS, task -> threads.add(task(task)));
            if (threadProblem != null && problem == null) {
                problem = "threads of pid " + process.pid() + ": " + threadProblem;
            }
        }
        return new Listing<>(threads, problem);
    }

    public Listing<LinuxModule> modules() throws IOException {
        KernelProfile.ModuleLayout layout = profile.module();
        long head = symbol(profile.symbols().modules());
        List<LinuxModule> modules = new ArrayList<>();
        String problem = walkList(head, layout.list(), MAX_MODULES, module -> modules.add(module(module)));
        return new Listing<>(modules, problem);
    }

    /** One task_struct, read at its kernel address. */
    public LinuxTask task(long task) throws IOException {
        KernelProfile.TaskLayout layout = profile.task();
        int pid = memory.readInt(task + layout.pid());
        int tgid = memory.readInt(task + layout.tgid());
        long parent = memory.readLong(task + layout.realParent());
        int ppid = memory.readInt(parent + layout.tgid());
        long cred = memory.readLong(task + layout.realCred());
        int uid = memory.readInt(cred + profile.credUid());
        String name = memory.readCString(task + layout.comm(), layout.commLength());
        long flags = memory.readInt(task + layout.flags()) & 0xffff_ffffL;
        long stateValue = layout.stateSize() == 4 ? memory.readInt(task + layout.state()) : memory.readLong(task + layout.state());
        int exitState = memory.readInt(task + layout.exitState());
        long mm = memory.readLong(task + layout.mm());
        long pageTableRoot = mm == 0 ? 0 : walker.translate(memory.root(), memory.readLong(mm + profile.mmPgd()));
        return new LinuxTask(pid, tgid, ppid, uid, name, stateLetter(stateValue, exitState),
                (flags & PF_KTHREAD) != 0, pageTableRoot, task);
    }

    /** The letter /proc/PID/status shows: the highest reportable state bit, with TASK_IDLE shown as I. */
    static char stateLetter(long state, int exitState) {
        if (state == TASK_IDLE) {
            return 'I';
        }
        int reported = (int) ((state | exitState) & TASK_REPORT);
        return STATE_LETTERS.charAt(32 - Integer.numberOfLeadingZeros(reported));
    }

    private LinuxModule module(long module) throws IOException {
        KernelProfile.ModuleLayout layout = profile.module();
        String name = memory.readCString(module + layout.name(), layout.nameLength());
        long base;
        long size;
        if (layout.memCount() < 0) {
            base = memory.readLong(module + layout.coreBase());
            size = (memory.readInt(module + layout.coreSize()) & 0xffff_ffffL)
                    + (memory.readInt(module + layout.initSize()) & 0xffff_ffffL);
        } else {
            base = memory.readLong(module + layout.mem() + layout.memBase());
            size = 0;
            for (int i = 0; i < layout.memCount(); i++) {
                size += memory.readInt(module + layout.mem() + (long) i * layout.memStride() + layout.memSize()) & 0xffff_ffffL;
            }
        }
        return new LinuxModule(name, base, size, module);
    }

    private interface NodeVisitor {
        void visit(long container) throws IOException;
    }

    /**
     * Walks a circular list_head list from {@code head}, handing each containing structure (node minus
     * {@code nodeOffset}) to the visitor. Returns null when the walk came back to the head, else what stopped it.
     */
    private String walkList(long head, int nodeOffset, int bound, NodeVisitor visitor) throws IOException {
        Set<Long> visited = new HashSet<>();
        long node;
        try {
            node = memory.readLong(head);
        } catch (IOException e) {
            return "cannot read the list head at 0x" + Long.toHexString(head) + ": " + e.getMessage();
        }
        while (node != head) {
            if (!visited.add(node)) {
                return "cycle at 0x" + Long.toHexString(node) + " after " + visited.size() + " entries";
            }
            if (visited.size() > bound) {
                return "more than " + bound + " entries";
            }
            try {
                visitor.visit(node - nodeOffset);
                node = memory.readLong(node);
            } catch (IOException e) {
                return "unreadable entry at 0x" + Long.toHexString(node) + ": " + e.getMessage();
            }
        }
        return null;
    }

    /** Address of a symbol from its offset to {@code _text}. */
    long symbol(long offsetFromText) {
        return textAddress + offsetFromText;
    }
}
