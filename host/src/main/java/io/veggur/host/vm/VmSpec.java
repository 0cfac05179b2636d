package io.veggur.host.vm;

import java.nio.file.Path;
import java.util.List;

/**
 * A request to start a VM, as given by a user. Null kernel means the built-in test guest; accel may be "auto".
 * {@code virtioPorts} names virtio-serial ports to give the guest (see {@link VmConfig#virtioPorts}).
 */
public record VmSpec(String name, Path kernel, Path initrd, String append, Path disk, long memoryBytes, int vcpus,
                     String cpuModel, String accel, boolean allowWrite, List<String> virtioPorts) {
    public static final long MIN_MEMORY = 64L << 20;
    public static final int MAX_VCPUS = 64;

    public VmSpec {
        virtioPorts = virtioPorts == null ? List.of() : List.copyOf(virtioPorts);
    }

    public VmSpec(String name, Path kernel, Path initrd, String append, Path disk, long memoryBytes, int vcpus,
                  String cpuModel, String accel, boolean allowWrite) {
        this(name, kernel, initrd, append, disk, memoryBytes, vcpus, cpuModel, accel, allowWrite, List.of());
    }

    public static VmSpec builtinGuest(String name) {
        return new VmSpec(name, null, null, null, null, 256L << 20, 1, null, "auto", false);
    }

    public VmSpec withVirtioPorts(List<String> names) {
        return new VmSpec(name, kernel, initrd, append, disk, memoryBytes, vcpus, cpuModel, accel, allowWrite, names);
    }

    /** Boots another kernel with the test guest's conventions (console on ttyS0, no reboot on panic). */
    public VmSpec withKernel(Path kernelFile, Path initrdFile, String kernelArguments) {
        return new VmSpec(name, kernelFile, initrdFile, kernelArguments, disk, memoryBytes, vcpus, cpuModel, accel, allowWrite, virtioPorts);
    }

    public VmSpec withMemory(long bytes) {
        return new VmSpec(name, kernel, initrd, append, disk, bytes, vcpus, cpuModel, accel, allowWrite, virtioPorts);
    }

    public VmSpec withVcpus(int count) {
        return new VmSpec(name, kernel, initrd, append, disk, memoryBytes, count, cpuModel, accel, allowWrite, virtioPorts);
    }

    public VmSpec withCpuModel(String model) {
        return new VmSpec(name, kernel, initrd, append, disk, memoryBytes, vcpus, model, accel, allowWrite, virtioPorts);
    }

    public VmSpec withAppend(String kernelArguments) {
        return new VmSpec(name, kernel, initrd, kernelArguments, disk, memoryBytes, vcpus, cpuModel, accel, allowWrite, virtioPorts);
    }

}
