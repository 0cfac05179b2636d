package io.veggur.agent.container;

import java.nio.file.Path;
import java.util.Map;
import java.util.Objects;
import java.util.regex.Pattern;

/**
 * What {@link DockerEngine#start} needs for one analysis environment: the container {@code name}, the tools
 * {@code image}, the unprivileged {@code uid} it runs as (user and group; the caller has chowned
 * {@code socketDirectory} to it), the VM's socket directory (mounted read-only at /vmi) and the container's labels,
 * which must name the environment under {@link DockerEngine#ENV_LABEL} so the agent finds the container again.
 */
public record EnvironmentContainer(String name, String image, int uid, Path socketDirectory, Map<String, String> labels) {
    /** Docker's own rule for container names, with run-env.sh's length limit. */
    private static final Pattern NAME = Pattern.compile("[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}");

    public EnvironmentContainer {
        Objects.requireNonNull(name, "name");
        Objects.requireNonNull(image, "image");
        Objects.requireNonNull(socketDirectory, "socketDirectory");
        if (!NAME.matcher(name).matches()) {
            throw new IllegalArgumentException("bad container name: " + name);
        }
        if (image.isBlank()) {
            throw new IllegalArgumentException("no image given for " + name);
        }
        // Not root: uid 0 owns the root-owned RAM file and could reopen the read-only memory descriptor for writing.
        if (uid <= 0) {
            throw new IllegalArgumentException("the environment's uid must be positive (not root): " + uid);
        }
        if (!socketDirectory.isAbsolute()) {
            throw new IllegalArgumentException("the socket directory must be an absolute path: " + socketDirectory);
        }
        labels = Map.copyOf(labels);
        if (!labels.containsKey(DockerEngine.ENV_LABEL)) {
            throw new IllegalArgumentException("the labels must name the environment (" + DockerEngine.ENV_LABEL + ")");
        }
    }
}
