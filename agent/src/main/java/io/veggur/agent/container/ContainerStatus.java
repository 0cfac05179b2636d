package io.veggur.agent.container;

import java.util.Map;
import java.util.Objects;

/** A container as the daemon reports it; {@code name} has no leading slash, {@code labels} is never null. */
public record ContainerStatus(String id, String name, boolean running, Map<String, String> labels) {
    public ContainerStatus {
        Objects.requireNonNull(id, "id");
        Objects.requireNonNull(name, "name");
        labels = labels == null ? Map.of() : Map.copyOf(labels);
    }
}
