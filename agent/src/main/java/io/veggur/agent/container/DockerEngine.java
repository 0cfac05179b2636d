package io.veggur.agent.container;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.github.dockerjava.api.DockerClient;
import com.github.dockerjava.api.async.ResultCallback;
import com.github.dockerjava.api.command.InspectContainerResponse;
import com.github.dockerjava.api.command.InspectExecResponse;
import com.github.dockerjava.api.exception.DockerException;
import com.github.dockerjava.api.exception.NotFoundException;
import com.github.dockerjava.api.model.Capability;
import com.github.dockerjava.api.model.Container;
import com.github.dockerjava.api.model.Frame;
import com.github.dockerjava.api.model.HostConfig;
import com.github.dockerjava.api.model.Image;
import com.github.dockerjava.api.model.Mount;
import com.github.dockerjava.api.model.MountType;
import com.github.dockerjava.api.model.RestartPolicy;
import com.github.dockerjava.api.model.Ulimit;
import com.github.dockerjava.core.DefaultDockerClientConfig;
import com.github.dockerjava.core.DockerClientImpl;
import com.github.dockerjava.core.RemoteApiVersion;
import com.github.dockerjava.zerodep.ZerodepDockerHttpClient;
import io.veggur.agent.exec.ExecOutput;
import io.veggur.agent.exec.ExecReaderGoneException;
import io.veggur.agent.exec.ExecResult;
import io.veggur.agent.exec.ExecStream;
import java.io.Closeable;
import java.io.IOException;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.Supplier;

/**
 * Client of the private Docker Engine that runs container-flavor analysis environments ({@code container/dockerd.sh};
 * {@code container/run-env.sh} is the reference for what {@link #start} creates). Safe for concurrent use.
 *
 * <p>Every failure of the daemon or the transport arrives as a {@link ContainerException} with a one-line message.
 * Requests other than {@link #exec} have no response timeout: a wedged daemon blocks the caller.
 */
public final class DockerEngine implements AutoCloseable {
    /** Label on every environment container; the value is the environment's id. */
    public static final String ENV_LABEL = "io.veggur.env";
    /** Label that {@code container/build-image.sh} puts on the tools images (the hash of their inputs). */
    static final String TOOLS_IMAGE_LABEL = "io.veggur.inputs";
    private static final long MIB = 1024 * 1024;
    private static final Duration CONNECT_TIMEOUT = Duration.ofSeconds(5);
    /** How often {@link #exec} asks for the exit code between the end of the output and the daemon recording it. */
    private static final long EXIT_POLL_MILLIS = 5;
    private static final ObjectMapper JSON = new ObjectMapper();

    private final DockerClient docker;

    private DockerEngine(DockerClient docker) {
        this.docker = docker;
    }

    /**
     * Connects to {@code dockerHost} ({@code unix:///path/docker.sock}) with API version 1.41 (docker.io 20.10, the
     * newest it speaks) and pings it. The client reads no environment variable and no {@code ~/.docker} file.
     */
    public static DockerEngine connect(String dockerHost) throws ContainerException {
        URI uri = URI.create(dockerHost);
        if (!"unix".equals(uri.getScheme()) || uri.getPath() == null || uri.getPath().isEmpty()) {
            throw new IllegalArgumentException("not a unix:///path Docker host: " + dockerHost);
        }
        var config = new DefaultDockerClientConfig.Builder()
                .withDockerHost(dockerHost)
                .withApiVersion(RemoteApiVersion.VERSION_1_41)
                .build();
        var http = new ZerodepDockerHttpClient.Builder()
                .dockerHost(config.getDockerHost())
                .connectionTimeout(CONNECT_TIMEOUT)
                .build();
        var engine = new DockerEngine(DockerClientImpl.getInstance(config, http));
        try {
            call("Docker Engine at " + dockerHost + " does not answer", () -> engine.docker.pingCmd().exec());
        } catch (ContainerException e) {
            engine.close();
            throw e;
        }
        return engine;
    }

    /** The newest image labelled by {@code container/build-image.sh}: its tag, or its id if it lost the tag. */
    public String newestToolsImage() throws ContainerException {
        List<Image> images = call("list the tools images",
                () -> docker.listImagesCmd().withLabelFilter(TOOLS_IMAGE_LABEL).exec());
        Image newest = images.stream()
                .max(Comparator.comparing(image -> Objects.requireNonNullElse(image.getCreated(), 0L)))
                .orElseThrow(() -> new ContainerException(
                        "no veggur-tools image; build one: container/build-image.sh cli/target/veggur.jar"));
        return Arrays.stream(Objects.requireNonNullElse(newest.getRepoTags(), new String[0]))
                .filter(tag -> !tag.equals("<none>:<none>"))
                .findFirst()
                .orElse(newest.getId());
    }

    /**
     * Creates and starts the environment's container with run-env.sh's hardening and returns its id. A container of
     * that name that carries the same environment label is a leftover (a crashed agent, a failed start) and is
     * removed first; one that belongs to anything else is refused. If the start fails, the created container is
     * removed again, so a failed call leaves nothing behind.
     */
    public String start(EnvironmentContainer spec) throws ContainerException {
        String env = spec.labels().get(ENV_LABEL);
        // inspect also matches id prefixes; only a container with exactly this name is in the way.
        Optional<ContainerStatus> existing = inspect(spec.name()).filter(c -> c.name().equals(spec.name()));
        if (existing.isPresent()) {
            String owner = existing.get().labels().get(ENV_LABEL);
            if (!env.equals(owner)) {
                throw new ContainerException("container " + spec.name() + " exists and is not environment " + env
                        + (owner == null ? " (it has no " + ENV_LABEL + " label)" : " (it is " + owner + ")"));
            }
            remove(existing.get().id());
        }
        String id = call("create container " + spec.name(), () -> docker.createContainerCmd(spec.image())
                .withName(spec.name())
                .withUser(spec.uid() + ":" + spec.uid())
                .withLabels(spec.labels())
                .withStopTimeout(5)   // PID 1 of the tools image exits on SIGTERM at once anyway
                .withHostConfig(hostConfig(spec.socketDirectory()))
                .exec()
                .getId());
        try {
            call("start container " + spec.name(), () -> docker.startContainerCmd(id).exec());
        } catch (ContainerException e) {
            try {
                remove(id);
            } catch (ContainerException removal) {
                e.addSuppressed(removal);
            }
            throw e;
        }
        return id;
    }

    /** The flags of run-env.sh, one for one; see container/README.md for the reason of each. */
    private static HostConfig hostConfig(Path socketDirectory) {
        return HostConfig.newHostConfig()
                .withNetworkMode("none")
                .withIpcMode("none")
                .withCapDrop(Capability.ALL)
                .withSecurityOpts(List.of("no-new-privileges"))
                .withReadonlyRootfs(true)
                .withTmpFs(Map.of("/tmp", "rw,nosuid,nodev,noexec,size=64m"))
                .withPidsLimit(128L)
                .withMemory(512 * MIB)
                .withMemorySwap(512 * MIB)
                .withUlimits(List.of(new Ulimit("nofile", 1024L, 1024L)))
                .withRestartPolicy(RestartPolicy.noRestart())
                // A mount, not a bind (-v): the daemon refuses a missing source instead of creating it as root.
                .withMounts(List.of(new Mount()
                        .withType(MountType.BIND)
                        .withSource(socketDirectory.toString())
                        .withTarget("/vmi")
                        .withReadOnly(true)));
    }

    /** The container with that name or id, running or not; empty if there is none. */
    public Optional<ContainerStatus> inspect(String nameOrId) throws ContainerException {
        return call("inspect container " + nameOrId, () -> {
            try {
                InspectContainerResponse c = docker.inspectContainerCmd(nameOrId).exec();
                return Optional.of(new ContainerStatus(c.getId(), stripSlash(c.getName()),
                        Boolean.TRUE.equals(c.getState().getRunning()), c.getConfig().getLabels()));
            } catch (NotFoundException e) {
                return Optional.empty();
            }
        });
    }

    /** Every container, running or not, that carries {@link #ENV_LABEL}. */
    public List<ContainerStatus> environments() throws ContainerException {
        List<Container> containers = call("list the environment containers",
                () -> docker.listContainersCmd().withShowAll(true).withLabelFilter(List.of(ENV_LABEL)).exec());
        return containers.stream()
                .map(c -> new ContainerStatus(c.getId(), stripSlash(c.getNames()[0]), "running".equals(c.getState()),
                        c.getLabels()))
                .toList();
    }

    /** Kills and removes the container; false if there was none. */
    public boolean remove(String nameOrId) throws ContainerException {
        return call("remove container " + nameOrId, () -> {
            try {
                docker.removeContainerCmd(nameOrId).withForce(true).withRemoveVolumes(true).exec();
                return true;
            } catch (NotFoundException e) {
                return false;
            }
        });
    }

    /**
     * Runs {@code argv} in the running container as the container's user, with no stdin and no terminal, passes its
     * stdout and stderr to {@code output} as they come, and waits for it to exit, at most {@code timeout} in all.
     *
     * <p>On timeout, when {@code output} fails (its reader left) or the output stream from the daemon fails, the
     * command is killed as far as this process may: the daemon names its host pid, which gets SIGKILL with its
     * descendants if it still is in this container's cgroup. Without that (no root, or the daemon on another host) it
     * runs on, bounded by the container's pids and memory limits.
     *
     * @throws ExecReaderGoneException if {@code output} failed (the command was killed)
     */
    public ExecResult exec(String nameOrId, List<String> argv, Duration timeout, ExecOutput output)
            throws ContainerException, ExecReaderGoneException {
        if (argv.isEmpty() || timeout.isNegative() || timeout.isZero()) {
            throw new IllegalArgumentException("exec needs a command and a positive timeout");
        }
        long deadline = System.nanoTime() + timeout.toNanos();
        String action = "exec " + argv.getFirst() + " in container " + nameOrId;
        String execId = call(action, () -> docker.execCreateCmd(nameOrId)
                .withCmd(argv.toArray(String[]::new))
                .withAttachStdout(true)
                .withAttachStderr(true)
                .exec()
                .getId());
        try (var forwarder = new OutputForwarder(output)) {
            call(action, () -> docker.execStartCmd(execId).exec(forwarder));
            boolean ended = false;
            while (!ended && System.nanoTime() - deadline < 0) {
                ended = forwarder.awaitEnd(Math.min(deadline - System.nanoTime(),
                        TimeUnit.MILLISECONDS.toNanos(ExecOutput.KEEP_ALIVE_MILLIS)));
                if (!ended) {
                    forwarder.keepAliveIfSilent();
                }
            }
            // Each way out but a normal end kills the command before the stream closes: closing waits for a chunk
            // being written, which a client that does not read could hold up for long.
            if (forwarder.readerFailure() != null) {
                killIfRunning(execId);
                forwarder.close();
                throw new ExecReaderGoneException(forwarder.readerFailure());
            }
            if (forwarder.streamFailure() != null) {
                killIfRunning(execId);
                forwarder.close();
                throw translate(action, forwarder.streamFailure());
            }
            Long exitCode = ended ? recordedExitCode(action, execId, deadline) : null;
            if (exitCode != null) {
                return ExecResult.exited(exitCode.intValue());
            }
            killIfRunning(execId);
            forwarder.close();
            return ExecResult.killedAtTimeout();
        } catch (InterruptedException e) {
            // The stream is closed on the way out; the command is not killed (its requests would be interrupted too).
            Thread.currentThread().interrupt();
            throw new ContainerException(action + ": interrupted");
        }
    }

    /**
     * The output ends when the command's stdout and stderr close, normally as it exits; the daemon records the exit
     * code a moment later. Polls for it until the deadline; null if it is not there by then.
     */
    private Long recordedExitCode(String action, String execId, long deadline)
            throws ContainerException, InterruptedException {
        while (true) {
            InspectExecResponse state = call(action, () -> docker.inspectExecCmd(execId).exec());
            if (!Boolean.TRUE.equals(state.isRunning()) && state.getExitCodeLong() != null) {
                return state.getExitCodeLong();
            }
            if (System.nanoTime() - deadline >= 0) {
                return null;
            }
            Thread.sleep(EXIT_POLL_MILLIS);
        }
    }

    /** Best effort (see {@link #exec}); a failure leaves the command running and changes nothing else. */
    private void killIfRunning(String execId) {
        InspectExecResponse state;
        try {
            state = call("inspect exec " + execId, () -> docker.inspectExecCmd(execId).exec());
        } catch (ContainerException e) {
            return;
        }
        Long pid = state.getPidLong();
        if (!Boolean.TRUE.equals(state.isRunning()) || pid == null || pid <= 0
                || !inCgroupOf(pid, state.getContainerID())) {
            return;
        }
        // ProcessHandle checks the start time before signalling, so a pid reused since the lookup is not hit.
        ProcessHandle.of(pid).ifPresent(command -> {
            List<ProcessHandle> descendants = command.descendants().toList();   // before they are orphaned
            command.destroyForcibly();
            descendants.forEach(ProcessHandle::destroyForcibly);
        });
    }

    /** Whether host process {@code pid} lives in the container's cgroup (cgroupfs paths end in the container id). */
    private static boolean inCgroupOf(long pid, String containerId) {
        try {
            return containerId != null
                    && Files.readString(Path.of("/proc", Long.toString(pid), "cgroup")).contains(containerId);
        } catch (IOException e) {
            return false;   // exited meanwhile, or not a pid of this host
        }
    }

    @Override
    public void close() {
        try {
            docker.close();
        } catch (IOException e) {
            // Closing only drops the connection pool; a failure there leaves nothing for the caller to do.
        }
    }

    private static String stripSlash(String name) {
        return name.startsWith("/") ? name.substring(1) : name;
    }

    /**
     * Runs one docker-java request. docker-java fails with unchecked exceptions: the daemon's answers
     * ({@link DockerException} and its subclasses), its own checks, and transport errors wrapped around an
     * {@link IOException}; each becomes a {@link ContainerException}.
     */
    private static <T> T call(String action, Supplier<T> request) throws ContainerException {
        try {
            return request.get();
        } catch (RuntimeException e) {
            throw translate(action, e);
        }
    }

    private static ContainerException translate(String action, Throwable failure) {
        IOException io = ioCause(failure);
        String reason = failure instanceof DockerException e ? daemonMessage(e) : describe(io != null ? io : failure);
        return new ContainerException(action + ": " + oneLine(reason), failure);
    }

    private static String describe(Throwable e) {
        String type = e.getClass().getSimpleName();
        return e.getMessage() == null ? type : e.getMessage() + " (" + type + ")";
    }

    private static IOException ioCause(Throwable e) {
        for (Throwable t = e; t != null; t = t.getCause()) {
            if (t instanceof IOException io) {
                return io;
            }
        }
        return null;
    }

    /** The daemon answers errors as {@code {"message": "..."}}; docker-java prefixes the body with the status. */
    private static String daemonMessage(DockerException e) {
        String text = Objects.requireNonNullElse(e.getMessage(), "");
        int body = text.indexOf('{');
        if (body >= 0) {
            try {
                String message = JSON.readTree(text.substring(body)).path("message").asText("");
                if (!message.isEmpty()) {
                    text = message;
                }
            } catch (IOException notJson) {
                // keep the whole text
            }
        }
        return oneLine(text) + " (HTTP " + e.getHttpStatus() + ")";
    }

    private static String oneLine(String text) {
        return text.strip().replaceAll("\\s+", " ");
    }

    /**
     * Passes the exec's multiplexed stream on, from docker-java's streaming thread, to an {@link ExecOutput}; a write
     * that fails ends the run. {@link #close} stops the stream (docker-java then closes the response and its
     * connection).
     */
    private static final class OutputForwarder implements ResultCallback<Frame> {
        private final ExecOutput output;
        private final CountDownLatch end = new CountDownLatch(1);
        /** Held while a chunk is written: once {@link #close} returns, nothing more reaches the output. */
        private final ReentrantLock writing = new ReentrantLock();
        private volatile long lastWrite = System.nanoTime();
        private Closeable stream;
        private volatile boolean closed;
        private volatile Throwable streamFailure;
        private volatile IOException readerFailure;

        OutputForwarder(ExecOutput output) {
            this.output = output;
        }

        @Override
        public void onStart(Closeable stream) {
            boolean closeNow;
            synchronized (this) {
                this.stream = stream;
                closeNow = closed;
            }
            if (closeNow) {
                closeQuietly(stream);
            }
        }

        @Override
        public void onNext(Frame frame) {
            // Without a terminal the daemon multiplexes; RAW would only come with one and is all stdout then.
            ExecStream target = switch (frame.getStreamType()) {
                case STDERR -> ExecStream.STDERR;
                case STDOUT, RAW -> ExecStream.STDOUT;
                case STDIN -> null;
            };
            if (target == null) {
                return;
            }
            byte[] payload = frame.getPayload();   // docker-java may reuse this array for the next frame
            writing.lock();
            try {
                passOn(() -> output.write(target, payload, 0, payload.length));
            } finally {
                writing.unlock();
            }
        }

        @Override
        public void onError(Throwable throwable) {
            synchronized (this) {
                if (closed) {
                    return;   // the stream failing because this side closed it
                }
            }
            streamFailure = throwable;
            end.countDown();
        }

        @Override
        public void onComplete() {
            end.countDown();
        }

        /**
         * {@link ExecOutput#keepAlive} if nothing was written for a while; a failure ends the run like a write's. A
         * chunk being written (perhaps held up by a slow reader) is life enough: then it returns at once.
         */
        void keepAliveIfSilent() {
            if (System.nanoTime() - lastWrite < TimeUnit.MILLISECONDS.toNanos(ExecOutput.KEEP_ALIVE_MILLIS)
                    || !writing.tryLock()) {
                return;
            }
            try {
                passOn(output::keepAlive);
            } finally {
                writing.unlock();
            }
        }

        /** One call on the output, unless the run is over; the caller holds {@link #writing}. A failure ends the run. */
        private void passOn(OutputCall call) {
            if (closed || readerFailure != null) {
                return;
            }
            try {
                call.run();
                lastWrite = System.nanoTime();
            } catch (IOException e) {
                readerFailure = e;
                end.countDown();
            }
        }

        private interface OutputCall {
            void run() throws IOException;
        }

        boolean awaitEnd(long nanos) throws InterruptedException {
            return end.await(Math.max(nanos, 0), TimeUnit.NANOSECONDS);
        }

        Throwable streamFailure() {
            return streamFailure;
        }

        IOException readerFailure() {
            return readerFailure;
        }

        @Override
        public void close() {
            Closeable toClose;
            synchronized (this) {
                closed = true;
                toClose = stream;
            }
            if (toClose != null) {
                closeQuietly(toClose);
            }
            writing.lock();   // a chunk being written when the stream closed has been written now; no other follows
            writing.unlock();
        }

        private static void closeQuietly(Closeable stream) {
            try {
                stream.close();
            } catch (IOException e) {
                // the connection is being dropped either way
            }
        }
    }
}
