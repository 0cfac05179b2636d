package io.veggur.host.supervisor;

import io.veggur.host.vm.JsonFiles;
import io.veggur.host.vm.VmConfig;
import io.veggur.host.vm.VmDirectory;
import java.nio.file.Path;

/**
 * Entry point of the detached per-VM supervisor process: {@code SupervisorMain VM_DIRECTORY}. It is started in its
 * own session by {@code VmManager} and outlives the command that started it.
 */
public final class SupervisorMain {
    private SupervisorMain() {}

    public static void main(String[] args) throws Exception {
        if (args.length != 1) {
            System.err.println("usage: SupervisorMain VM_DIRECTORY");
            System.exit(2);
        }
        VmDirectory directory = new VmDirectory(Path.of(args[0]));
        VmConfig config = JsonFiles.read(directory.config(), VmConfig.class);
        System.exit(new VmSupervisor(config, directory).run());
    }
}
