package io.veggur.cli;

import picocli.CommandLine.Command;

/** {@code veggur host ...}: what root on the host does directly, without the agent. */
@Command(name = "host", description = "Host-side commands for root, without the agent.", mixinStandardHelpOptions = true,
        subcommands = {HostVmCommand.class})
final class HostCommand {}
