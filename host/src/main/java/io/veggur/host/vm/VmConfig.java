package io.veggur.host.vm;

import java.nio.file.Path;

/**
 * Everything needed to launch one VM, fixed when it is started. Written by whoever starts the VM, read by its
 * supervisor. Paths are absolute and were checked to exist when the config was made.
 *
 * @param accel   the resolved accelerator, "kvm" or "tcg" (never "auto")
 * @param ramFile the shared RAM backing; on tmpfs so guest RAM never hits the disk
 */
public record VmConfig(String name, String id, Path kernel, Path initrd, String append, Path disk, long memoryBytes,
                       int vcpus, String cpuModel, String accel, boolean allowWrite, Path ramFile) {
    public VmConfig {
        VmName.check(name);
        if (!accel.equals("kvm") && !accel.equals("tcg")) {
            throw new IllegalArgumentException("accel must be resolved to kvm or tcg, got " + accel);
        }
    }
}
