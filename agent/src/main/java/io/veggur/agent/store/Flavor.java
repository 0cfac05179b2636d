package io.veggur.agent.store;

/**
 * What kind of introspection environment a tenant gets: a container on the host with the VM's socket mounted, a
 * monitoring VM whose one virtio-serial port leads to the socket, or the socket exposed on the network.
 */
public enum Flavor { CONTAINER, VM, NETWORK }
