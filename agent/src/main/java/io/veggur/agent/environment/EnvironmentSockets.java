package io.veggur.agent.environment;

import io.veggur.agent.host.HostVms;
import io.veggur.agent.store.Environment;
import io.veggur.agent.store.Vm;
import io.veggur.host.vm.VeggurHome;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Locale;

/**
 * Every flavor's role-bound socket: supervisor socket id {@code env-ID} in its own 0700 directory
 * {@code environments/env-ID}, opened through the VM's supervisor. A flavor that relays the socket elsewhere (TCP, a
 * serial port) opens it without the memory descriptor, which cannot cross a relay.
 */
public final class EnvironmentSockets {
    private final VeggurHome home;
    private final HostVms vms;

    public EnvironmentSockets(VeggurHome home, HostVms vms) {
        this.home = home;
        this.vms = vms;
    }

    public static String socketId(long environmentId) {
        return "env-" + environmentId;
    }

    public Path directory(long environmentId) {
        return home.root().resolve("environments").resolve(socketId(environmentId));
    }

    /** Opens (or, if open, confirms) the environment's socket; returns its path. */
    public Path open(Environment environment, Vm vm, boolean memoryDescriptor) throws IOException {
        Path directory = VeggurHome.privateDirectory(directory(environment.id()));
        return vms.control(vm).open(socketId(environment.id()), directory,
                environment.role().name().toLowerCase(Locale.ROOT), memoryDescriptor);
    }

    /** Ends the socket's sessions and removes it with its directory: {@link #closeSocket} then {@link #removeDirectory}. */
    public void close(Environment environment, Vm vm) throws IOException {
        closeSocket(environment, vm);
        removeDirectory(environment);
    }

    /** Closes the socket in the VM's supervisor, if it runs, which ends the socket's sessions at once. */
    public void closeSocket(Environment environment, Vm vm) throws IOException {
        if (vms.info(vm).filter(info -> info.supervisorPid() > 0).isPresent()) {
            try {
                vms.control(vm).close(socketId(environment.id()));
            } catch (IOException e) {
                // the supervisor is exiting: its sockets go with it
            }
        }
    }

    public void removeDirectory(Environment environment) throws IOException {
        VeggurHome.deleteTree(directory(environment.id()));
    }
}
