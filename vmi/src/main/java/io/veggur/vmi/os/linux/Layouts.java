package io.veggur.vmi.os.linux;

import java.io.IOException;

/**
 * Builds a {@link KernelProfile}'s layouts from any {@link TypeInfo}. Members that moved or were renamed across the
 * supported kernels (4.19-6.12) are looked up under each of their names; a member that is simply missing fails with
 * the struct and member named, which is what a user needs to report a kernel we do not handle.
 */
final class Layouts {
    private Layouts() {}

    static KernelProfile.TaskLayout task(TypeInfo types) throws IOException {
        String state = types.has("task_struct", "__state") ? "__state" : "state";
        return new KernelProfile.TaskLayout(types.size("task_struct"), types.offset("task_struct", "tasks"),
                types.offset("task_struct", "pid"), types.offset("task_struct", "tgid"),
                types.offset("task_struct", "comm"), types.arrayLength("task_struct", "comm"),
                types.offset("task_struct", "real_parent"), types.offset("task_struct", "real_cred"),
                types.offset("task_struct", "mm"), types.offset("task_struct", "flags"),
                types.offset("task_struct", state), state.equals("__state") ? 4 : 8,
                types.offset("task_struct", "exit_state"), types.offset("task_struct", "signal"),
                types.offset("task_struct", "thread_node"));
    }

    static int credUid(TypeInfo types) throws IOException {
        return types.offset("cred", "uid.val");
    }

    static int mmPgd(TypeInfo types) throws IOException {
        return types.offset("mm_struct", "pgd");
    }

    static int signalThreadHead(TypeInfo types) throws IOException {
        return types.offset("signal_struct", "thread_head");
    }

    /** Up to 6.3 module memory is core_layout/init_layout; from 6.4 an array mem[] of struct module_memory. */
    static KernelProfile.ModuleLayout module(TypeInfo types) throws IOException {
        int list = types.offset("module", "list");
        int name = types.offset("module", "name");
        int nameLength = types.arrayLength("module", "name");
        if (types.has("module", "core_layout")) {
            return new KernelProfile.ModuleLayout(list, name, nameLength, types.offset("module", "core_layout.base"),
                    types.offset("module", "core_layout.size"), types.offset("module", "init_layout.size"),
                    -1, -1, -1, -1, -1);
        }
        return new KernelProfile.ModuleLayout(list, name, nameLength, -1, -1, -1, types.offset("module", "mem"),
                types.arrayLength("module", "mem"), types.size("module_memory"),
                types.offset("module_memory", "base"), types.offset("module_memory", "size"));
    }
}
