package io.veggur.agent.environment;

import io.veggur.agent.container.ContainerException;
import io.veggur.agent.container.ContainerStatus;
import io.veggur.agent.container.DockerEngine;
import io.veggur.agent.container.EnvironmentContainer;
import io.veggur.agent.container.ExecResult;
import io.veggur.agent.host.HostVms;
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
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.stream.Collectors;
import java.util.stream.Stream;

/**
 * The container flavor: one container per environment, holding one role-bound socket of its VM.
 *
 * <p>Every resource is named after the environment id, so teardown finds it even if the agent died before recording
 * it: the supervisor socket id {@code env-ID}, the socket directory {@code environments/env-ID} (0700, owned by the
 * environment's uid {@value #UID_BASE} + ID, which no other environment or host account has), and the container
 * {@code veggur-AGENT-env-ID} labelled {@code io.veggur.env=ID} and {@code io.veggur.agent=AGENT} (and, for
 * operators, {@code io.veggur.vm} with the VM's id and {@code io.veggur.tenant}). The container mounts that directory
 * and nothing else. AGENT names this agent's Veggur home (a hash of its path): several agents (a demo, a test) may
 * share one dockerd, and each one only ever touches, adopts or removes its own containers.
 */
public final class ContainerEnvironments {
    static final int UID_BASE = 200_000;
    public static final String AGENT_LABEL = "io.veggur.agent";
    private static final Duration MAX_EXEC_TIME = Duration.ofMinutes(10);

    private final VeggurHome home;
    private final HostVms vms;
    private final DockerEngine docker;
    private final String image;
    private final String agent;

    public ContainerEnvironments(VeggurHome home, HostVms vms, DockerEngine docker, String image) {
        this.home = home;
        this.agent = agentId(home);
        this.vms = vms;
        this.docker = docker;
        this.image = image;
    }

    public static String socketId(long environmentId) {
        return "env-" + environmentId;
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

    public String containerName(long environmentId) {
        return "veggur-" + agent + "-env-" + environmentId;
    }

    public Path socketDirectory(long environmentId) {
        return home.root().resolve("environments").resolve(socketId(environmentId));
    }

    static int uid(long environmentId) {
        return Math.toIntExact(UID_BASE + environmentId);
    }

    /** Opens the role-bound socket and starts the container; returns the container id. */
    public String build(Environment environment, Vm vm) throws IOException, ContainerException {
        Path directory = VeggurHome.privateDirectory(socketDirectory(environment.id()));
        Path socket = vms.control(vm).open(socketId(environment.id()), directory,
                environment.role().name().toLowerCase(Locale.ROOT));
        // The directory stays 0700: on the host only root and the environment's uid may enter it.
        int uid = uid(environment.id());
        for (Path path : List.of(directory, socket)) {
            Files.setAttribute(path, "unix:uid", uid, LinkOption.NOFOLLOW_LINKS);
            Files.setAttribute(path, "unix:gid", uid, LinkOption.NOFOLLOW_LINKS);
        }
        return docker.start(new EnvironmentContainer(containerName(environment.id()), image, uid, directory,
                Map.of(DockerEngine.ENV_LABEL, Long.toString(environment.id()), AGENT_LABEL, agent,
                        "io.veggur.vm", Long.toString(vm.id()), "io.veggur.tenant", environment.tenant())));
    }

    /**
     * Whether a READY environment still stands: its container runs and its VM's supervisor still serves its socket
     * (re-opening it is a no-op when it does, and restores it if the supervisor lost it).
     */
    public boolean intact(Environment environment, Vm vm) throws IOException, ContainerException {
        boolean running = docker.inspect(containerName(environment.id())).map(ContainerStatus::running).orElse(false);
        if (!running) {
            return false;
        }
        vms.control(vm).open(socketId(environment.id()), socketDirectory(environment.id()),
                environment.role().name().toLowerCase(Locale.ROOT));
        return true;
    }

    /**
     * Removes everything the environment may have: its socket (closing the sessions on it at once), its container and
     * its directory. Idempotent; a VM that is gone has closed the socket already.
     */
    public void tearDown(Environment environment, Vm vm) throws IOException, ContainerException {
        if (vms.info(vm).filter(info -> info.supervisorPid() > 0).isPresent()) {
            try {
                vms.control(vm).close(socketId(environment.id()));
            } catch (IOException e) {
                // the supervisor is exiting: its sockets go with it
            }
        }
        docker.remove(containerName(environment.id()));
        Path directory = socketDirectory(environment.id());
        if (Files.isDirectory(directory, LinkOption.NOFOLLOW_LINKS)) {
            try (Stream<Path> entries = Files.list(directory)) {
                for (Path entry : entries.toList()) {
                    Files.deleteIfExists(entry);
                }
            }
            Files.deleteIfExists(directory);
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

    public ExecResult exec(Environment environment, List<String> argv, Duration timeout, int maxOutputBytes)
            throws ContainerException {
        Duration bounded = timeout.compareTo(MAX_EXEC_TIME) > 0 ? MAX_EXEC_TIME : timeout;
        return docker.exec(containerName(environment.id()), argv, bounded, maxOutputBytes);
    }

    private static long parseId(String label) {
        try {
            return label == null ? -1 : Long.parseLong(label);
        } catch (NumberFormatException e) {
            return -1;
        }
    }
}
