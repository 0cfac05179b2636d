package io.veggur.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.veggur.agent.client.AgentClient;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/** {@code veggur env ...}: introspection environments, one per VM and tenant, through the agent. */
@Command(name = "env", description = "Create, use and delete your introspection environments (through the agent).",
        mixinStandardHelpOptions = true,
        subcommands = {EnvCommand.Create.class, EnvCommand.Show.class, EnvCommand.ListEnvironments.class,
                EnvCommand.Delete.class, EnvCommand.Exec.class})
final class EnvCommand {
    /** Exit status when a command run in an environment did not finish in time (as timeout(1)). */
    static final int TIMED_OUT = 124;

    static void print(JsonNode environment) {
        System.out.printf("%-20s %-9s %-6s %-9s %s%n", environment.path("vm").asText(), environment.path("flavor").asText(),
                environment.path("role").asText(), environment.path("state").asText(),
                environment.path("detail").isNull() ? "" : environment.path("detail").asText());
    }

    @Command(name = "create", description = {"Deploy an environment for a VM and print what its tools connect to:",
            "container: /vmi/vmi.sock inside it; vm: serial:io.veggur.vmi inside the monitoring VM;",
            "network: tls://HOST:PORT from your machine, with the client identity written to --identity."})
    static final class Create implements Callable<Integer> {
        @Mixin AgentConnection connection;
        @Parameters(paramLabel = "VM") String vm;
        @Option(names = "--flavor", defaultValue = "container", description = "container, vm or network.") String flavor;
        @Option(names = "--role", defaultValue = "read", description = "read, trace or write (at most your role on the VM).") String role;
        @Option(names = "--client", paramLabel = "CIDR", description = "network: an address block your tools connect "
                + "from (repeatable; default: loopback only).") List<String> clients = new ArrayList<>();
        @Option(names = "--plaintext", description = "network: no TLS, only the --client address check (the paper's "
                + "relay; anyone on those addresses gets the socket).") boolean plaintext;
        @Option(names = "--identity", paramLabel = "FILE", description = "network: where to write the client identity "
                + "(PKCS#12, 0600) and FILE.password. Default: OWNER-NAME.p12 here.") Path identity;
        @Option(names = "--json") boolean json;

        @Override
        public Integer call() throws Exception {
            ObjectNode request = Json.MAPPER.createObjectNode().put("flavor", flavor).put("role", role);
            if (!clients.isEmpty()) {
                clients.forEach(request.putArray("clients")::add);
            }
            if (plaintext) {
                request.put("plaintext", true);
                System.err.println("veggur: warning: a plaintext environment has no authentication and no encryption:"
                        + " anyone who can reach it from the --client addresses gets the VM's socket");
            }
            // Checked before asking: the identity comes once, and a file in the way would lose it.
            Path file = identity != null ? identity : Path.of(vm.replace('/', '-') + ".p12");
            for (Path taken : List.of(file, Path.of(file + ".password"))) {
                if ("network".equals(flavor) && !plaintext && Files.exists(taken, LinkOption.NOFOLLOW_LINKS)) {
                    throw new IOException(taken + " exists already: choose another --identity");
                }
            }
            JsonNode environment = connection.client().put(AgentConnection.vmPath(vm) + "/environment", request);
            if (environment.hasNonNull("identity")) {
                AgentClient.writeIdentity(file, environment);
                ObjectNode shown = ((ObjectNode) environment).deepCopy();
                shown.remove(List.of("identity", "password"));
                shown.put("identityFile", file.toAbsolutePath().toString());
                environment = shown;
            }
            if (json) {
                System.out.println(Json.write(environment));
            } else {
                print(environment);
                System.out.println("endpoint: " + environment.path("endpoint").asText());
                if (environment.hasNonNull("identityFile")) {
                    System.out.println("identity: " + environment.path("identityFile").asText()
                            + " (password in the .password file next to it)");
                    System.out.println("e.g.      veggur vmi ps --socket '" + environment.path("endpoint").asText()
                            + "?identity=" + environment.path("identityFile").asText() + "'");
                }
            }
            return 0;
        }
    }

    @Command(name = "show", description = "Show your environment for a VM.")
    static final class Show implements Callable<Integer> {
        @Mixin AgentConnection connection;
        @Parameters(paramLabel = "VM") String vm;
        @Option(names = "--json") boolean json;

        @Override
        public Integer call() throws Exception {
            JsonNode environment = connection.client().get(AgentConnection.vmPath(vm) + "/environment");
            if (json) {
                System.out.println(Json.write(environment));
            } else {
                print(environment);
            }
            return 0;
        }
    }

    @Command(name = "list", description = "List your environments.")
    static final class ListEnvironments implements Callable<Integer> {
        @Mixin AgentConnection connection;
        @Option(names = "--json") boolean json;

        @Override
        public Integer call() throws Exception {
            JsonNode environments = connection.client().get("/v1/environments");
            if (json) {
                System.out.println(Json.write(environments));
            } else {
                environments.forEach(EnvCommand::print);
            }
            return 0;
        }
    }

    @Command(name = "delete", description = "Delete your environment for a VM (its sessions end at once).")
    static final class Delete implements Callable<Integer> {
        @Mixin AgentConnection connection;
        @Parameters(paramLabel = "VM") String vm;

        @Override
        public Integer call() throws Exception {
            connection.client().delete(AgentConnection.vmPath(vm) + "/environment");
            System.out.println("deleted your environment for " + vm);
            return 0;
        }
    }

    @Command(name = "exec", description = "Run a command in your environment for a VM, e.g. "
            + "veggur env exec web -- veggur vmi ps --socket /vmi/vmi.sock. Its output shows as it comes; it is killed "
            + "at the timeout, or when this command is interrupted. Exits with the command's status.")
    static final class Exec implements Callable<Integer> {
        @Mixin AgentConnection connection;
        @Parameters(index = "0", paramLabel = "VM") String vm;
        @Parameters(index = "1..*", arity = "1..*", paramLabel = "COMMAND") List<String> command;
        @Option(names = "--timeout", defaultValue = "120", paramLabel = "SECONDS",
                description = "Kill the command after this long (at most a day; default ${DEFAULT-VALUE} s).")
        int timeoutSeconds;

        @Override
        public Integer call() throws Exception {
            AgentClient.ExecEnded ended = connection.client().exec(AgentConnection.vmPath(vm), command, timeoutSeconds,
                    System.out, System.err);
            if (ended.truncated()) {
                System.err.println("veggur: output truncated by the agent");
            }
            if (ended.timedOut()) {
                System.err.println("veggur: the command did not finish within " + timeoutSeconds + " s");
                return TIMED_OUT;
            }
            return ended.exitCode();
        }
    }
}
