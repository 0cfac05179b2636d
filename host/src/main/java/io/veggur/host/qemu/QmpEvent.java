package io.veggur.host.qemu;

import com.fasterxml.jackson.databind.JsonNode;
import java.time.Instant;

/**
 * An asynchronous QMP event such as {@code STOP}, {@code RESUME} or {@code SHUTDOWN}. {@code data} is an empty object
 * for events that carry none; {@code timestamp} is QEMU's wall-clock time when it emitted the event.
 */
public record QmpEvent(String name, JsonNode data, Instant timestamp) {}
