package io.veggur.vmi.os.linux;

import io.veggur.vmi.symbols.btf.Btf;
import io.veggur.vmi.symbols.btf.BtfException;
import io.veggur.vmi.symbols.btf.Member;
import io.veggur.vmi.symbols.btf.StructLayout;

/**
 * Builds a {@link KernelProfile}'s layouts from the kernel's own BTF. Members that moved or were renamed across the
 * supported kernels (4.19-6.12) are looked up under each of their names; a member that is simply missing fails with
 * the struct and member named, which is what a user needs to report a kernel we do not handle.
 */
final class BtfProfiles {
    private BtfProfiles() {}

    static KernelProfile.TaskLayout task(Btf btf) throws BtfException {
        StructLayout task = btf.struct("task_struct");
        boolean newState = task.hasMember("__state");
        Member comm = task.member("comm");
        return new KernelProfile.TaskLayout(task.size(), offset(task, "tasks"), offset(task, "pid"), offset(task, "tgid"),
                comm.byteOffset(), (int) comm.type().elementCount(), offset(task, "real_parent"),
                offset(task, "real_cred"), offset(task, "mm"), offset(task, "flags"),
                offset(task, newState ? "__state" : "state"), newState ? 4 : 8, offset(task, "exit_state"),
                offset(task, "signal"), offset(task, "thread_node"));
    }

    static int credUid(Btf btf) throws BtfException {
        return offset(btf.struct("cred"), "uid.val");
    }

    static int mmPgd(Btf btf) throws BtfException {
        return offset(btf.struct("mm_struct"), "pgd");
    }

    static int signalThreadHead(Btf btf) throws BtfException {
        return offset(btf.struct("signal_struct"), "thread_head");
    }

    static KernelProfile.ModuleLayout module(Btf btf) throws BtfException {
        StructLayout module = btf.struct("module");
        Member name = module.member("name");
        if (module.hasMember("core_layout")) {
            return new KernelProfile.ModuleLayout(offset(module, "list"), name.byteOffset(), (int) name.type().elementCount(),
                    offset(module, "core_layout.base"), offset(module, "core_layout.size"), offset(module, "init_layout.size"),
                    -1, -1, -1, -1, -1);
        }
        Member mem = module.member("mem");
        StructLayout memory = btf.struct("module_memory");
        return new KernelProfile.ModuleLayout(offset(module, "list"), name.byteOffset(), (int) name.type().elementCount(),
                -1, -1, -1, mem.byteOffset(), (int) mem.type().elementCount(), memory.size(),
                offset(memory, "base"), offset(memory, "size"));
    }

    private static int offset(StructLayout struct, String path) throws BtfException {
        return struct.member(path).byteOffset();
    }
}
