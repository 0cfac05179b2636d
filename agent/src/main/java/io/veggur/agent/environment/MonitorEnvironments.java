package io.veggur.agent.environment;

import io.veggur.agent.audit.AuditEntry;
import io.veggur.agent.exec.ExecOutput;
import io.veggur.agent.exec.ExecResult;
import io.veggur.agent.monitor.ExecChannel;
import io.veggur.agent.monitor.SerialBridge;
import io.veggur.agent.store.AgentStore;
import io.veggur.agent.store.Environment;
import io.veggur.agent.store.Vm;
import io.veggur.host.vm.GuestConsole;
import io.veggur.host.vm.VeggurHome;
import io.veggur.host.vm.VmDirectory;
import io.veggur.host.vm.VmException;
import io.veggur.host.vm.VmInfo;
import io.veggur.host.vm.VmManager;
import io.veggur.host.vm.VmSpec;
import java.io.IOException;
import java.lang.System.Logger;
import java.lang.System.Logger.Level;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * The monitoring-VM flavor: one small VM per environment (host VM {@code mon-ID}, booted from the image that
 * {@code monitor/build-image.sh} builds: a kernel and an initramfs holding a jlinked JRE, the Veggur tools and
 * busybox). It has no disk and no network; its only channels are two virtio-serial ports, each a QEMU chardev socket
 * in its private directory that only the agent connects to:
 * <ul>
 *   <li>{@value #VMI_PORT}: a {@link SerialBridge} to this environment's role-bound socket of the monitored VM, and
 *       nothing else, so the monitoring VM has no path to any other VM's socket. Tools inside reach it as
 *       {@code serial:io.veggur.vmi}.</li>
 *   <li>{@value ExecChannel#PORT_NAME}: commands the tenant runs through the agent ({@code veggur env exec}).</li>
 * </ul>
 * The bridge runs in the agent: after an agent restart, {@link #intact} starts it again. The monitoring VM's own
 * introspection socket (every supervised VM has one) stays in its host-private directory; no tenant gets it.
 */
public final class MonitorEnvironments implements EnvironmentFlavor {
    private static final Logger LOG = System.getLogger(MonitorEnvironments.class.getName());
    public static final String VMI_PORT = "io.veggur.vmi";
    /** What tools inside the monitoring VM connect to. */
    public static final String ENDPOINT = "serial:" + VMI_PORT;
    private static final List<String> PORTS = List.of(VMI_PORT, ExecChannel.PORT_NAME);
    private static final long MEMORY = 512L << 20;
    private static final Duration BOOT_TIMEOUT = Duration.ofSeconds(180);
    private static final Pattern READY = Pattern.compile("^VEGGUR-MONITOR-READY$");
    private static final Pattern FAILED = Pattern.compile("^VEGGUR-MONITOR-ERROR .*");

    private final VeggurHome home;
    private final VmManager manager;
    private final EnvironmentSockets sockets;
    private final AgentStore store;
    private final Path kernel;
    private final Path initramfs;
    private final String append;
    private final Map<Long, SerialBridge> bridges = new ConcurrentHashMap<>();

    /** {@code image}: a directory made by {@code monitor/build-image.sh} (vmlinuz, initramfs.*, append). */
    public MonitorEnvironments(VeggurHome home, EnvironmentSockets sockets, AgentStore store, Path image)
            throws IOException {
        this.home = home;
        this.manager = new VmManager(home);
        this.sockets = sockets;
        this.store = store;
        this.kernel = image.resolve("vmlinuz");
        try (Stream<Path> files = Files.list(image)) {
            this.initramfs = files.filter(file -> file.getFileName().toString().startsWith("initramfs.")).findFirst()
                    .orElseThrow(() -> new IOException("no initramfs in the monitoring VM image " + image));
        }
        this.append = Files.readString(image.resolve("append"), StandardCharsets.UTF_8).strip();
        if (!Files.isRegularFile(kernel)) {
            throw new IOException("no kernel in the monitoring VM image " + image);
        }
    }

    /** The monitoring VM's host name. */
    @Override
    public String handle(long environmentId) {
        return "mon-" + environmentId;
    }

    /** Opens the socket (no descriptor: it is relayed), boots the monitoring VM, bridges its port to the socket. */
    @Override
    public Built build(Environment environment, Vm vm, EnvironmentRequest request) throws IOException {
        Path socket = sockets.open(environment, vm, false);
        String name = handle(environment.id());
        VmSpec spec = VmSpec.builtinGuest(name).withKernel(kernel, initramfs, append).withMemory(MEMORY)
                .withVirtioPorts(PORTS);
        try {
            manager.start(spec);
        } catch (VmException e) {
            throw new IOException("the monitoring VM did not start: " + e.getMessage(), e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted while starting the monitoring VM", e);
        }
        bridge(environment, socket);
        awaitReady(name);
        return Built.NOTHING;
    }

    /** Its monitoring VM runs; its socket is open and its bridge is up (both restored after an agent restart). */
    @Override
    public boolean intact(Environment environment, Vm vm) throws IOException {
        if (!running(handle(environment.id()))) {
            return false;
        }
        Path socket = sockets.open(environment, vm, false);
        if (!bridges.containsKey(environment.id())) {
            bridge(environment, socket);
        }
        return true;
    }

    @Override
    public void tearDown(Environment environment, Vm vm) throws IOException {
        SerialBridge bridge = bridges.remove(environment.id());
        if (bridge != null) {
            bridge.close();
        }
        String name = handle(environment.id());
        VmDirectory directory = home.vm(name);
        if (Files.exists(directory.config())) {
            try {
                manager.stop(name);
            } catch (VmException e) {
                throw new IOException("the monitoring VM did not stop: " + e.getMessage(), e);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IOException("interrupted while stopping the monitoring VM", e);
            }
        }
        sockets.close(environment, vm);
        VeggurHome.deleteTree(directory.root());
    }

    @Override
    public String endpoint(Environment environment) {
        return ENDPOINT;
    }

    @Override
    public ExecResult exec(Environment environment, List<String> argv, Duration timeout, ExecOutput output)
            throws IOException {
        return ExecChannel.exec(home.vm(handle(environment.id())).virtioPortSocket(PORTS.indexOf(ExecChannel.PORT_NAME)),
                argv, timeout, output);
    }

    /** Stops every bridge (the agent is stopping; monitoring VMs run on and the next agent bridges them again). */
    public void close() {
        bridges.values().forEach(SerialBridge::close);
        bridges.clear();
    }

    private void bridge(Environment environment, Path socket) {
        Path port = home.vm(handle(environment.id())).virtioPortSocket(PORTS.indexOf(VMI_PORT));
        SerialBridge bridge = SerialBridge.start(port, socket, event -> audit(environment, event));
        SerialBridge previous = bridges.put(environment.id(), bridge);
        if (previous != null) {
            previous.close();
        }
    }

    /** Sessions and violations are audited like network connections; port (dis)connections only logged. */
    private void audit(Environment environment, SerialBridge.Event event) {
        String actor = "tenant:" + environment.tenant();
        String target = "vm:" + environment.vm();
        String where = "monitoring VM of env " + environment.id();
        AuditEntry entry = switch (event) {
            case SerialBridge.Event.SessionOpened opened ->
                    AuditEntry.allowed(actor, "serial.connect", target, where + ": session " + opened.session());
            case SerialBridge.Event.SessionRefused refused ->
                    AuditEntry.denied(actor, "serial.connect", target, where + ": " + refused.reason());
            case SerialBridge.Event.ProtocolViolation violation ->
                    AuditEntry.denied(actor, "serial.violation", target, where + ": " + violation.problem());
            case SerialBridge.Event.SessionClosed closed -> {
                LOG.log(Level.DEBUG, where + ": session " + closed.session() + " ended: " + closed.reason());
                yield null;
            }
            case SerialBridge.Event.PortConnected connected -> {
                LOG.log(Level.DEBUG, where + ": port connected");
                yield null;
            }
            case SerialBridge.Event.PortDisconnected disconnected -> {
                LOG.log(Level.DEBUG, where + ": port disconnected: " + disconnected.reason());
                yield null;
            }
        };
        if (entry != null) {
            try {
                store.audit().append(entry);
            } catch (RuntimeException e) {
                LOG.log(Level.WARNING, "audit record lost: " + entry, e);
            }
        }
    }

    private boolean running(String name) throws IOException {
        if (!Files.exists(home.vm(name).config())) {
            return false;
        }
        try {
            VmInfo info = manager.info(name);
            return info.state().equals("running");
        } catch (VmException e) {
            return false;
        }
    }

    /** The image's /init prints READY once the ports are linked and the exec service runs, or an ERROR line. */
    private void awaitReady(String name) throws IOException {
        GuestConsole console = new GuestConsole(home.vm(name));
        try {
            String line = console.awaitLine(Pattern.compile(READY.pattern() + "|" + FAILED.pattern()), BOOT_TIMEOUT)
                    .group();
            if (!READY.matcher(line).find()) {
                throw new IOException("the monitoring VM failed to set up: " + line);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted while the monitoring VM booted", e);
        }
    }
}
