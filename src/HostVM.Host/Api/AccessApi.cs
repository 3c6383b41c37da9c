using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using HostVM.Host.Inventory;
using HostVM.Host.Security;
using Microsoft.AspNetCore.Http;

namespace HostVM.Host.Api;

/// <summary>The access-control resources: tokens, projects (tenants with quotas) and the audit log.</summary>
public sealed class AccessApi(TokenService tokens, InventoryStore inventory, AuditLog audit, Storage.VolumeManager volumes)
{
    public const int MaxAuditEntries = 10_000;

    private static HostJsonContext Json => HostJsonContext.Default;

    public void Map(ApiRoutes routes)
    {
        ArgumentNullException.ThrowIfNull(routes);
        routes.Get("/v1/tokens", Access.Admin, "token.list", "Tokens (a project's admin: its project's)", (HttpContext c) =>
            Results.Json(tokens.List().Where(t => Visible(c, t)).ToList(), Json.ListTokenRecord)).Produces<List<TokenRecord>>();
        routes.Get("/v1/tokens/{id}", Access.Admin, "token.get", "One token (never its secret)", (string id, HttpContext c) => Results.Json(Token(c, id), Json.TokenRecord)).Produces<TokenRecord>();
        routes.Post("/v1/tokens", Access.Admin, "token.create", "Make a token; the answer is the only time it is shown", async (HttpContext c) =>
        {
            var request = await HostApi.ReadAsync(c, Json.CreateTokenRequest).ConfigureAwait(false);
            var caller = AccessControl.CallerOf(c);
            string role = Roles.IsKnown(request.Role) ? request.Role! : throw ApiProblem.BadRequest($"role '{request.Role}': must be viewer, operator or admin.", "role");
            string? project = request.Project ?? caller.Project;
            if (project is not null && (!caller.Sees(project) || inventory.Project(project) is null))
            {
                throw ApiProblem.NotFound("project", project);
            }

            if (project is null && caller.Project is not null)
            {
                throw new ApiProblem(403, "forbidden", "The token's role may not do this", "A project's admin makes tokens of its project only.");
            }

            DateTimeOffset? expires = request.ExpiresIn is { } e ? DateTimeOffset.UtcNow + Durations.Parse(e, "expires_in") : null;
            var (record, token) = tokens.Create(role, project, expires, request.Description ?? string.Empty, caller.Who);
            AccessControl.Touch(c, "token", record.Id, project);
            c.Response.Headers.Location = $"/v1/tokens/{record.Id}";
            c.Response.Headers.CacheControl = "no-store";
            return Results.Json(new CreatedToken(token, record), Json.CreatedToken, statusCode: StatusCodes.Status201Created);
        }).Accepts<CreateTokenRequest>("application/json").Produces<CreatedToken>(201);
        routes.Delete("/v1/tokens/{id}", Access.Admin, "token.revoke", "Revoke a token (at once, for good)", (string id, HttpContext c) =>
        {
            tokens.Revoke(Token(c, id).Id);
            return Results.NoContent();
        }).Produces(204);

        routes.Get("/v1/projects", Access.Read, "project.list", "Projects (a project's token: its own)", (HttpContext c) =>
            Results.Json(inventory.Projects().Where(p => AccessControl.CallerOf(c).Sees(p.Name)).Select(View).ToList(), Json.ListProjectView)).Produces<List<ProjectView>>();
        routes.Get("/v1/projects/{name}", Access.Read, "project.get", "One project with its usage", (string name, HttpContext c) => Results.Json(View(Project(c, name)), Json.ProjectView)).Produces<ProjectView>();
        routes.Post("/v1/projects", Access.HostAdmin, "project.create", "Create a project", async (HttpContext c) =>
        {
            var request = await HostApi.ReadAsync(c, Json.CreateProjectRequest).ConfigureAwait(false);
            string name = Names.Check(request.Name, "name");
            AccessControl.Touch(c, "project", name, name);
            var project = new ProjectRecord { Name = name, Description = request.Description ?? string.Empty, Quotas = Checked(request.Quotas), CreatedAt = DateTimeOffset.UtcNow };
            lock (inventory)
            {
                if (inventory.Project(name) is not null)
                {
                    throw ApiProblem.Conflict($"A project named '{name}' exists.");
                }

                inventory.PutProject(project);
            }

            c.Response.Headers.Location = $"/v1/projects/{name}";
            return Results.Json(View(project), Json.ProjectView, statusCode: StatusCodes.Status201Created);
        }).Accepts<CreateProjectRequest>("application/json").Produces<ProjectView>(201);
        routes.Patch("/v1/projects/{name}", Access.HostAdmin, "project.update", "Change a project's description or quotas", async (string name, HttpContext c) =>
        {
            var project = Project(c, name);
            var request = await HostApi.ReadAsync(c, Json.UpdateProjectRequest).ConfigureAwait(false);
            project = project with { Description = request.Description ?? project.Description, Quotas = request.Quotas is null ? project.Quotas : Checked(request.Quotas) };
            inventory.PutProject(project);
            return Results.Json(View(project), Json.ProjectView);
        }).Accepts<UpdateProjectRequest>("application/json").Produces<ProjectView>();
        routes.Delete("/v1/projects/{name}", Access.HostAdmin, "project.delete", "Delete an empty project", (string name, HttpContext c) =>
        {
            var project = Project(c, name);
            if (project.Name == ProjectRecord.Default)
            {
                throw ApiProblem.Conflict("The default project cannot be deleted.");
            }

            var usage = Usage(project.Name);
            int liveTokens = tokens.List().Count(t => t.Project == project.Name && t.RevokedAt is null);
            if (usage.Vms + usage.Images + usage.Networks + liveTokens > 0)
            {
                throw ApiProblem.Conflict($"Project '{project.Name}' holds {usage.Vms} VMs, {usage.Images} images, {usage.Networks} networks and {liveTokens} live tokens; delete or revoke them first.");
            }

            inventory.DeleteProject(project.Name);
            return Results.NoContent();
        }).Produces(204);

        routes.Get("/v1/audit", Access.Admin, "audit.list", "The audit log, newest first, filtered by time, project, object and caller",
            (DateTimeOffset? since, DateTimeOffset? until, string? project, string? @object, string? who, int? limit, HttpContext c) =>
            {
                if (limit is < 1 or > MaxAuditEntries)
                {
                    throw ApiProblem.BadRequest($"limit {limit}: must be 1 to {MaxAuditEntries}.", "limit");
                }

                var caller = AccessControl.CallerOf(c);
                if (caller.Project is { } own)
                {
                    if (project is not null && project != own)
                    {
                        throw ApiProblem.NotFound("project", project);
                    }

                    project = own; // a project's admin reads its project's entries only
                }

                audit.Flush(); // the refusals counted so far, so the reader sees every call up to now
                return Results.Json(inventory.Audit(since, until, project, @object, who, limit ?? 100).ToList(), Json.ListAuditRecord);
            }).Produces<List<AuditRecord>>();
    }

    private static bool Visible(HttpContext context, TokenRecord token) =>
        AccessControl.CallerOf(context).Project is not { } own || token.Project == own;

    private TokenRecord Token(HttpContext context, string id)
    {
        var token = tokens.Get(id);
        if (token is null || !Visible(context, token))
        {
            throw ApiProblem.NotFound("token", id);
        }

        AccessControl.Touch(context, "token", token.Id, token.Project);
        return token;
    }

    private ProjectRecord Project(HttpContext context, string name)
    {
        var project = inventory.Project(name);
        if (project is null || !AccessControl.CallerOf(context).Sees(project.Name))
        {
            throw ApiProblem.NotFound("project", name);
        }

        AccessControl.Touch(context, "project", project.Name, project.Name);
        return project;
    }

    private ProjectUsage Usage(string project)
    {
        var vms = inventory.Vms().Where(v => v.Project == project).ToList();
        return new ProjectUsage(vms.Count, vms.Sum(v => (long)v.Vcpus), vms.Sum(v => v.MemoryMib), (volumes.AllocatedBytes(project) + (1 << 20) - 1) >> 20,
            inventory.Images().Count(i => i.Project == project), inventory.Networks().Count(n => n.Project == project));
    }

    private ProjectView View(ProjectRecord project) => new(project.Name, project.Description, project.Quotas, Usage(project.Name), project.CreatedAt);

    private static ProjectQuotas Checked(ProjectQuotas? quotas)
    {
        quotas ??= new ProjectQuotas();
        foreach (var (field, value) in new (string, long?)[] { ("quotas.max_vms", quotas.MaxVms), ("quotas.max_vcpus", quotas.MaxVcpus), ("quotas.max_memory_mib", quotas.MaxMemoryMib), ("quotas.max_disk_mib", quotas.MaxDiskMib), ("quotas.max_networks", quotas.MaxNetworks) })
        {
            if (value is < 0)
            {
                throw ApiProblem.BadRequest($"{field} {value}: must be 0 or more (leave it out for no limit).", field);
            }
        }

        return quotas;
    }
}
