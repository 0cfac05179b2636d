package io.veggur.agent.environment;

import io.veggur.agent.container.ContainerException;
import io.veggur.agent.container.ContainerStatus;
import io.veggur.agent.container.DockerEngine;
import io.veggur.agent.container.EnvironmentContainer;
import io.veggur.agent.exec.ExecOutput;
import io.veggur.agent.exec.ExecResult;
import io.veggur.agent.store.Environment;
import io.veggur.agent.store.Vm;
import io.veggur.host.vm.VeggurHome;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Collectors;

/**
 * The container flavor: one container per environment, holding one role-bound socket of its VM.
 *
 * <p>The socket's directory ({@link EnvironmentSockets}) is chowned to the environment's uid {@value #UID_BASE} + ID,
 * which no other environment or host account has, and stays 0700. The container {@code veggur-AGENT-env-ID} is
 * labelled {@code io.veggur.env=ID} and {@code io.veggur.agent=AGENT} (and, for operators, {@code io.veggur.vm} with
 * the VM's id and {@code io.veggur.tenant}), and mounts that directory and nothing else. AGENT names this agent's
 * Veggur home (a hash of its path): several agents (a demo, a test) may share one dockerd, and each one only ever
 * touches, adopts or removes its own containers.
 */
public final class ContainerEnvironments implements EnvironmentFlavor {
    static final int UID_BASE = 200_000;
    public static final String AGENT_LABEL = "io.veggur.agent";
    /** Where the container sees its socket. */
    public static final String SOCKET = "/vmi/vmi.sock";

    private final EnvironmentSockets sockets;
    private final DockerEngine docker;
    private final String image;
    private final String agent;

    public ContainerEnvironments(VeggurHome home, EnvironmentSockets sockets, DockerEngine docker, String image) {
        this.agent = agentId(home);
        this.sockets = sockets;
        this.docker = docker;
        this.image = image;
    }

    /** The agent's name on the shared dockerd: 12 hex digits of a hash of its home's path. */
    public static String agentId(VeggurHome home) {
        try {
            byte[] digest = MessageDigest.getInstance("SHA-256")
                    .digest(home.root().toAbsolutePath().normalize().toString().getBytes(StandardCharsets.UTF_8));
            return HexFormat.of().formatHex(digest, 0, 6);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 is missing from the JDK", e);
        }
    }

    @Override
    public String handle(long environmentId) {
        return "veggur-" + agent + "-env-" + environmentId;
    }

    static int uid(long environmentId) {
        return Math.toIntExact(UID_BASE + environmentId);
    }

    /** Opens the role-bound socket and starts the container. */
    @Override
    public Built build(Environment environment, Vm vm, EnvironmentRequest request) throws IOException {
        Path socket = sockets.open(environment, vm, true);
        Path directory = socket.getParent();
        // The directory stays 0700: on the host only root and the environment's uid may enter it.
        int uid = uid(environment.id());
        for (Path path : List.of(directory, socket)) {
            Files.setAttribute(path, "unix:uid", uid, LinkOption.NOFOLLOW_LINKS);
            Files.setAttribute(path, "unix:gid", uid, LinkOption.NOFOLLOW_LINKS);
        }
        try {
            docker.start(new EnvironmentContainer(handle(environment.id()), image, uid, directory,
                    Map.of(DockerEngine.ENV_LABEL, Long.toString(environment.id()), AGENT_LABEL, agent,
                            "io.veggur.vm", Long.toString(vm.id()), "io.veggur.tenant", environment.tenant())));
        } catch (ContainerException e) {
            throw new IOException(e.getMessage(), e);
        }
        return Built.NOTHING;
    }

    /**
     * Its container runs and its VM's supervisor still serves its socket (re-opening it is a no-op when it does, and
     * restores it if the supervisor lost it).
     */
    @Override
    public boolean intact(Environment environment, Vm vm) throws IOException {
        boolean running;
        try {
            running = docker.inspect(handle(environment.id())).map(ContainerStatus::running).orElse(false);
        } catch (ContainerException e) {
            throw new IOException(e.getMessage(), e);
        }
        if (!running) {
            return false;
        }
        sockets.open(environment, vm, true);
        return true;
    }

    /**
     * The socket closes first, so a tool in the container learns from the server that its session ended; the
     * directory goes last, so its absence means the container is gone too.
     */
    @Override
    public void tearDown(Environment environment, Vm vm) throws IOException {
        sockets.closeSocket(environment, vm);
        try {
            docker.remove(handle(environment.id()));
        } catch (ContainerException e) {
            throw new IOException(e.getMessage(), e);
        }
        sockets.removeDirectory(environment);
    }

    @Override
    public String endpoint(Environment environment) {
        return SOCKET;
    }

    @Override
    public ExecResult exec(Environment environment, List<String> argv, Duration timeout, ExecOutput output)
            throws IOException {
        try {
            return docker.exec(handle(environment.id()), argv, timeout, output);
        } catch (ContainerException e) {
            throw new IOException(e.getMessage(), e);
        }
    }

    /** This agent's environment containers whose id is not in {@code known}: left by a crash, to be removed. */
    public List<String> strayContainers(Set<Long> known) throws ContainerException {
        return docker.environments().stream()
                .filter(status -> agent.equals(status.labels().get(AGENT_LABEL)))
                .filter(status -> !known.contains(parseId(status.labels().get(DockerEngine.ENV_LABEL))))
                .map(ContainerStatus::name)
                .collect(Collectors.toList());
    }

    public void removeContainer(String name) throws ContainerException {
        docker.remove(name);
    }

    private static long parseId(String label) {
        try {
            return label == null ? -1 : Long.parseLong(label);
        } catch (NumberFormatException e) {
            return -1;
        }
    }
}
