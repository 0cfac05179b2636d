package io.veggur.agent.store;

/** What kind of introspection environment a tenant gets: a container on the host with the VM's socket mounted. */
public enum Flavor { CONTAINER }
