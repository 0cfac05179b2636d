package io.veggur.vmi.os.linux;

/**
 * Everything the Linux model needs to know about one kernel build: structure member offsets and the positions of a
 * few symbols relative to {@code _text}. It is derived from the guest's own BTF (or an ISF file), depends on nothing
 * that changes between boots (KASLR is applied at run time), and is cached per kernel build id.
 *
 * <p>Offsets are in bytes; -1 marks a member this kernel does not have.
 */
public record KernelProfile(
        String buildId,
        String banner,
        Symbols symbols,
        TaskLayout task,
        int credUid,
        int mmPgd,
        int signalThreadHead,
        ModuleLayout module) {

    static KernelProfile of(String buildId, String banner, Symbols symbols, TypeInfo types) throws java.io.IOException {
        return new KernelProfile(buildId, banner, symbols, Layouts.task(types), Layouts.credUid(types),
                Layouts.mmPgd(types), Layouts.signalThreadHead(types), Layouts.module(types));
    }

    /**
     * Symbol addresses minus the address of {@code _text}, so they hold for any KASLR slide. The ELF notes bounds
     * (which hold the build id) are 0 when the kernel does not export them.
     */
    public record Symbols(long initTask, long modules, long initTopPgt, long linuxBanner, long startNotes,
                          long stopNotes) {}

    /**
     * task_struct. {@code state} is {@code __state} (u32, 5.14+) or {@code state} (long, older), {@code stateSize}
     * says which. Threads hang off {@code signal->thread_head} through {@code threadNode}.
     */
    public record TaskLayout(int size, int tasks, int pid, int tgid, int comm, int commLength, int realParent,
                             int realCred, int mm, int flags, int state, int stateSize, int exitState, int signal,
                             int threadNode) {}

    /**
     * struct module. Kernels up to 6.3 describe memory with {@code core_layout}/{@code init_layout}
     * ({@code memCount} = -1); 6.4+ with {@code mem[memCount]} of {@code struct module_memory}. For the former,
     * {@code coreBase}/{@code coreSize}/{@code initSize} are absolute offsets in struct module; for the latter
     * {@code mem} is the array's offset, {@code memStride} its element size, and {@code memBase}/{@code memSize}
     * offsets inside an element, element 0 being MOD_TEXT.
     */
    public record ModuleLayout(int list, int name, int nameLength, int coreBase, int coreSize, int initSize,
                               int mem, int memCount, int memStride, int memBase, int memSize) {}
}
