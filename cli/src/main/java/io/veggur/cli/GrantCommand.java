package io.veggur.cli;

import com.fasterxml.jackson.databind.JsonNode;
import io.veggur.agent.client.AgentClient;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/** {@code veggur grant|revoke|grants}: an owner shares introspection of its VM. */
final class GrantCommand {
    private GrantCommand() {}

    @Command(name = "grant", mixinStandardHelpOptions = true,
            description = "Let another tenant introspect your VM: read (passive), trace (events, pause) or write.")
    static final class Grant implements Callable<Integer> {
        @Mixin AgentConnection connection;
        @Parameters(index = "0", paramLabel = "VM") String vm;
        @Parameters(index = "1", paramLabel = "TENANT") String tenant;
        @Parameters(index = "2", paramLabel = "ROLE") String role;

        @Override
        public Integer call() throws Exception {
            JsonNode grant = connection.client().put(AgentConnection.vmPath(vm) + "/grants/" + AgentClient.segment(tenant),
                    Json.MAPPER.createObjectNode().put("role", role));
            System.out.println("granted " + grant.path("grantee").asText() + " " + grant.path("role").asText() + " on "
                    + grant.path("vm").asText());
            return 0;
        }
    }

    @Command(name = "revoke", mixinStandardHelpOptions = true,
            description = "Take a tenant's access away; its environment and live sessions on the VM end at once.")
    static final class Revoke implements Callable<Integer> {
        @Mixin AgentConnection connection;
        @Parameters(index = "0", paramLabel = "VM") String vm;
        @Parameters(index = "1", paramLabel = "TENANT") String tenant;

        @Override
        public Integer call() throws Exception {
            JsonNode answer = connection.client().delete(AgentConnection.vmPath(vm) + "/grants/" + AgentClient.segment(tenant));
            System.out.println(answer.path("revoked").asBoolean() ? "revoked " + tenant + " on " + vm
                    : tenant + " had no grant on " + vm);
            return 0;
        }
    }

    @Command(name = "grants", mixinStandardHelpOptions = true, description = "List the grants on one of your VMs.")
    static final class ListGrants implements Callable<Integer> {
        @Mixin AgentConnection connection;
        @Parameters(paramLabel = "VM") String vm;
        @Option(names = "--json") boolean json;

        @Override
        public Integer call() throws Exception {
            JsonNode grants = connection.client().get(AgentConnection.vmPath(vm) + "/grants");
            if (json) {
                System.out.println(Json.write(grants));
            } else {
                grants.forEach(g -> System.out.println(g.path("grantee").asText() + " " + g.path("role").asText()));
            }
            return 0;
        }
    }
}
