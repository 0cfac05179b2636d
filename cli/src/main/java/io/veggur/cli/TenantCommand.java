package io.veggur.cli;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/** {@code veggur tenant create|list}: the operator administers tenants. */
@Command(name = "tenant", description = "Create and list tenants (operator token).", mixinStandardHelpOptions = true,
        subcommands = {TenantCommand.Create.class, TenantCommand.ListTenants.class})
final class TenantCommand {
    @Command(name = "create", description = "Create a tenant and print its bearer token (shown once).")
    static final class Create implements Callable<Integer> {
        @Mixin AgentConnection connection;
        @Parameters(paramLabel = "NAME") String name;
        @Option(names = "--json") boolean json;

        @Override
        public Integer call() throws Exception {
            JsonNode created = connection.client().post("/v1/tenants", Json.MAPPER.createObjectNode().put("name", name));
            if (json) {
                System.out.println(Json.write(created));
            } else {
                System.out.println("tenant " + created.path("name").asText() + " created; its token (shown once):");
                System.out.println(created.path("token").asText());
            }
            return 0;
        }
    }

    @Command(name = "list", description = "List tenants.")
    static final class ListTenants implements Callable<Integer> {
        @Mixin AgentConnection connection;
        @Option(names = "--json") boolean json;

        @Override
        public Integer call() throws Exception {
            JsonNode tenants = connection.client().get("/v1/tenants");
            if (json) {
                System.out.println(Json.write(tenants));
            } else {
                tenants.forEach(t -> System.out.println(t.path("name").asText()));
            }
            return 0;
        }
    }
}
