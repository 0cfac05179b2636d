package io.veggur.agent;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.veggur.agent.api.AgentApi;
import io.veggur.agent.container.ContainerException;
import io.veggur.agent.container.DockerEngine;
import io.veggur.agent.environment.ContainerEnvironments;
import io.veggur.agent.environment.EnvironmentFlavor;
import io.veggur.agent.environment.EnvironmentSockets;
import io.veggur.agent.environment.MonitorEnvironments;
import io.veggur.agent.environment.NetworkEnvironments;
import io.veggur.agent.host.HostVms;
import io.veggur.agent.network.CertificateAuthority;
import io.veggur.agent.store.AgentStore;
import io.veggur.agent.store.Flavor;
import io.veggur.host.vm.VeggurHome;
import java.io.IOException;
import java.net.InetAddress;
import java.lang.System.Logger;
import java.lang.System.Logger.Level;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.EnumMap;
import java.util.Map;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;

/**
 * The host agent: one per hypervisor host, run as root. It owns the store ({@code agent/agent.db}), the VMs (through
 * their supervisors, which outlive it), the environments (through the private dockerd) and the REST API.
 *
 * <p>Files under {@code $VEGGUR_HOME/agent} (0700): {@code agent.db} (with its WAL), {@code operator.token} (0600,
 * written when the store has no operator token yet) and {@code agent.json} (the API address and the agent's pid,
 * written once the API answers; removed on a clean stop), and {@code ca/} (the network flavor's certificate authority).
 * The network flavor's endpoints and the vm flavor's serial bridges run inside the agent: they stop with it and the
 * next agent restarts them (monitoring VMs, like all VMs, outlive it).
 */
public final class Agent implements AutoCloseable {
    private static final Logger LOG = System.getLogger(Agent.class.getName());
    private static final Duration RECONCILE_PERIOD = Duration.ofSeconds(1);

    /**
     * How to run: where, on which address (port 0 picks one), which dockerd and tools image (null: the newest), and
     * the address network environments listen on (the wildcard address: every interface), and the monitoring VM
     * image (a directory made by monitor/build-image.sh; null: the vm flavor is not offered).
     */
    public record Options(VeggurHome home, String listenHost, int listenPort, String dockerHost, String image,
                          InetAddress endpointAddress, Path monitorImage) {}

    private final Path directory;
    private final AgentStore store;
    private final DockerEngine docker;
    private final NetworkEnvironments network;
    private final MonitorEnvironments monitors;
    private final AgentApi api;
    private final ScheduledExecutorService reconcilerThread;

    private Agent(Path directory, AgentStore store, DockerEngine docker, NetworkEnvironments network,
                  MonitorEnvironments monitors, AgentApi api, ScheduledExecutorService reconcilerThread) {
        this.directory = directory;
        this.store = store;
        this.docker = docker;
        this.network = network;
        this.monitors = monitors;
        this.api = api;
        this.reconcilerThread = reconcilerThread;
    }

    /** Opens the store, re-adopts what is on the host, then serves. */
    public static Agent start(Options options) throws IOException, ContainerException {
        Path directory = VeggurHome.privateDirectory(options.home().root().resolve("agent"));
        AgentStore store = AgentStore.open(directory.resolve("agent.db"));
        try {
            DockerEngine docker = DockerEngine.connect(options.dockerHost());
            String image = options.image() != null ? options.image() : docker.newestToolsImage();
            HostVms vms = new HostVms(options.home());
            EnvironmentSockets sockets = new EnvironmentSockets(options.home(), vms);
            ContainerEnvironments containers = new ContainerEnvironments(options.home(), sockets, docker, image);
            NetworkEnvironments network = new NetworkEnvironments(sockets, store,
                    CertificateAuthority.open(directory.resolve("ca")), options.endpointAddress());
            Map<Flavor, EnvironmentFlavor> flavors = new EnumMap<>(Flavor.class);
            flavors.put(Flavor.CONTAINER, containers);
            flavors.put(Flavor.NETWORK, network);
            MonitorEnvironments monitors = null;
            if (options.monitorImage() != null) {
                monitors = new MonitorEnvironments(options.home(), sockets, store, options.monitorImage());
                flavors.put(Flavor.VM, monitors);
            } else {
                LOG.log(Level.WARNING, "no monitoring VM image given: the vm flavor is not offered");
            }
            VmLocks locks = new VmLocks();
            AgentService service = new AgentService(store, vms, sockets, flavors, locks);
            Reconciler reconciler = new Reconciler(store, vms, flavors, containers, service, locks);
            writeOperatorTokenIfMissing(store, directory.resolve("operator.token"));
            reconciler.reconcile();
            ScheduledExecutorService thread = Executors.newSingleThreadScheduledExecutor(
                    Thread.ofPlatform().daemon().name("veggur-reconciler").factory());
            thread.scheduleWithFixedDelay(reconciler::reconcile, RECONCILE_PERIOD.toMillis(), RECONCILE_PERIOD.toMillis(),
                    TimeUnit.MILLISECONDS);
            AgentApi api = AgentApi.start(options.listenHost(), options.listenPort(), store, service);
            Agent agent = new Agent(directory, store, docker, network, monitors, api, thread);
            agent.writeAddress();
            LOG.log(Level.INFO, "agent serving on " + api.url() + " with image " + image);
            return agent;
        } catch (IOException | ContainerException | RuntimeException e) {
            store.close();
            throw e;
        }
    }

    public String url() {
        return api.url();
    }

    /** The operator token is written once; whoever reads the file (root) administers tenants. */
    private static void writeOperatorTokenIfMissing(AgentStore store, Path file) throws IOException {
        if (store.hasOperatorToken() && Files.exists(file)) {
            return;
        }
        String token = store.issueOperatorToken();
        Path temporary = file.resolveSibling(file.getFileName() + ".tmp");
        Files.deleteIfExists(temporary);
        Files.createFile(temporary, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
        Files.writeString(temporary, token + "\n", StandardCharsets.UTF_8);
        Files.move(temporary, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
    }

    private void writeAddress() throws IOException {
        Path temporary = directory.resolve("agent.json.tmp");
        new ObjectMapper().writeValue(temporary.toFile(), Map.of("url", api.url(), "pid", ProcessHandle.current().pid()));
        Files.move(temporary, directory.resolve("agent.json"), StandardCopyOption.ATOMIC_MOVE,
                StandardCopyOption.REPLACE_EXISTING);
    }

    /** Stops serving. VMs and environments keep running; the next agent re-adopts them. */
    @Override
    public void close() {
        api.stop();
        reconcilerThread.shutdownNow();
        try {
            reconcilerThread.awaitTermination(30, TimeUnit.SECONDS);
            Files.deleteIfExists(directory.resolve("agent.json"));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } catch (IOException e) {
            LOG.log(Level.WARNING, "removing agent.json: " + e.getMessage());
        }
        network.close();
        if (monitors != null) {
            monitors.close();
        }
        docker.close();
        store.close();
    }
}
