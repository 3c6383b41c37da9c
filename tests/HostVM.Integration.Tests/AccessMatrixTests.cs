using System.Net;
using System.Text;
using System.Text.Json;
using Xunit;

namespace HostVM.Integration.Tests;

/// <summary>
/// Access control over the whole API, against a real daemon: every route the daemon serves (read from its
/// OpenAPI document, so a new route cannot skip this) × every role, scoped to a project or not × an object
/// of the caller's project and one of another. The expected access of each route is written here, by hand:
/// it is the specification, and a route the daemon serves that is not in it fails the test.
/// </summary>
public sealed class AccessMatrixTests
{
    /// <summary>What each route asks of its caller (docs/operations.md, "Security model").</summary>
    private static readonly Dictionary<string, string> ExpectedAccess = new()
    {
        ["GET /v1/host"] = "read",
        ["GET /v1/host/stats"] = "read",
        ["GET /metrics"] = "read",
        ["GET /v1/images"] = "read",
        ["GET /v1/images/{name}"] = "read",
        ["POST /v1/images"] = "operate",
        ["DELETE /v1/images/{name}"] = "operate",
        ["GET /v1/vms"] = "read",
        ["GET /v1/vms/{vm}"] = "read",
        ["POST /v1/vms"] = "operate",
        ["PATCH /v1/vms/{vm}"] = "operate",
        ["DELETE /v1/vms/{vm}"] = "operate",
        ["POST /v1/vms/{vm}/start"] = "operate",
        ["POST /v1/vms/{vm}/stop"] = "operate",
        ["POST /v1/vms/{vm}/restart"] = "operate",
        ["POST /v1/vms/{vm}/pause"] = "operate",
        ["POST /v1/vms/{vm}/resume"] = "operate",
        ["GET /v1/vms/{vm}/stats"] = "read",
        ["GET /v1/vms/{vm}/stats/history"] = "read",
        ["GET /v1/vms/{vm}/console"] = "read",
        ["GET /v1/vms/{vm}/console/log"] = "read",
        ["GET /v1/vms/{vm}/disks/{disk}/bitmaps"] = "read",
        ["PUT /v1/vms/{vm}/disks/{disk}/bitmaps"] = "operate",
        ["GET /v1/vms/{vm}/disks/{disk}/bitmaps/{name}/extents"] = "read",
        ["GET /v1/vms/{vm}/disks/{disk}/job"] = "read",
        ["POST /v1/vms/{vm}/disks/{disk}/job"] = "operate",
        ["DELETE /v1/vms/{vm}/disks/{disk}/job"] = "operate",
        ["GET /v1/networks"] = "read",
        ["GET /v1/networks/{name}"] = "read",
        ["POST /v1/networks"] = "operate",
        ["DELETE /v1/networks/{name}"] = "operate",
        ["PUT /v1/networks/{name}/egress"] = "host-admin",
        ["GET /v1/networks/{name}/forwards"] = "read",
        ["POST /v1/networks/{name}/forwards"] = "operate",
        ["DELETE /v1/networks/{name}/forwards/{protocol}/{port}"] = "operate",
        ["GET /v1/events"] = "read",
        ["GET /v1/events/stream"] = "read",
        ["GET /v1/tokens"] = "admin",
        ["GET /v1/tokens/{id}"] = "admin",
        ["POST /v1/tokens"] = "admin",
        ["DELETE /v1/tokens/{id}"] = "admin",
        ["GET /v1/projects"] = "read",
        ["GET /v1/projects/{name}"] = "read",
        ["POST /v1/projects"] = "host-admin",
        ["PATCH /v1/projects/{name}"] = "host-admin",
        ["DELETE /v1/projects/{name}"] = "host-admin",
        ["GET /v1/audit"] = "admin",
        ["GET /v1/pools"] = "read",
        ["GET /v1/pools/{name}"] = "read",
        ["POST /v1/pools"] = "host-admin",
        ["DELETE /v1/pools/{name}"] = "host-admin",
        ["GET /v1/volumes"] = "read",
        ["GET /v1/volumes/{pool}/{name}"] = "read",
        ["POST /v1/volumes"] = "operate",
        ["PATCH /v1/volumes/{pool}/{name}"] = "operate",
        ["DELETE /v1/volumes/{pool}/{name}"] = "operate",
        ["PUT /v1/volumes/{pool}/{name}/content"] = "operate",
        ["GET /v1/volumes/{pool}/{name}/content"] = "operate",
        ["POST /v1/volumes/{pool}/{name}/serve"] = "host-admin",
        ["DELETE /v1/volumes/{pool}/{name}/serve"] = "host-admin",
    };

    /// <summary>Routes whose object is the host's, not a project's: every project's token that may read them sees the same one.</summary>
    private static readonly HashSet<string> HostObjects = ["GET /v1/pools/{name}"];

    private static readonly string[] Roles = ["viewer", "operator", "admin"];

    private readonly string _poolRoot = Path.Combine(Path.GetTempPath(), $"hostvm-matrix-pools-{Guid.NewGuid():N}");

    private int _serial;

    private sealed record Principal(string Label, string Id, string Role, string? Project, HttpClient Client);

    private sealed record Call(string Method, string Path, string Who, int Status);

    [Fact]
    public async Task EveryRouteRefusesWhatEachRoleAndProjectMayNotDoAndAllowsTheRest()
    {
        string config = Path.Combine(Path.GetTempPath(), $"hostvm-matrix-{Guid.NewGuid():N}.json");
        // VMMs that exit at once: a start passes access control and then fails, quickly, without a guest.
        await File.WriteAllTextAsync(config, """{"vmm_command": ["/bin/false"], "auth_failure_limit": 100000}""");
        using var daemon = await DaemonUnderTest.StartAsync("--config", config);
        File.Delete(config);
        // The host's admin imports from the import directory, alpha's tokens from its own directory in it.
        string kernel = Path.Combine(daemon.DataDir, "import", "kernel");
        foreach (string dir in new[] { "", "alpha" })
        {
            Directory.CreateDirectory(Path.Combine(daemon.DataDir, "import", dir));
            await File.WriteAllBytesAsync(Path.Combine(daemon.DataDir, "import", dir, "kernel"), new byte[4096]);
        }

        var admin = daemon.Client;

        foreach (string project in new[] { "alpha", "beta" })
        {
            Assert.Equal(201, (await daemon.SendAsync(HttpMethod.Post, "/v1/projects", new { name = project })).Status);
        }

        var principals = new List<Principal>();
        foreach (string? project in new[] { "alpha", null })
        {
            foreach (string role in Roles)
            {
                var (_, created) = await daemon.SendAsync(HttpMethod.Post, "/v1/tokens", new { role, project, description = "matrix" });
                principals.Add(new Principal($"{role}@{project ?? "*"}", created.GetProperty("details").GetProperty("id").GetString()!, role, project, daemon.ClientWith(created.GetProperty("token").GetString())));
            }
        }

        // The served routes, from the daemon's own OpenAPI document.
        using var document = JsonDocument.Parse(await admin.GetStringAsync("/openapi/v1.json"));
        var served = new Dictionary<string, string>();
        foreach (var path in document.RootElement.GetProperty("paths").EnumerateObject())
        {
            foreach (var operation in path.Value.EnumerateObject())
            {
                served[$"{operation.Name.ToUpperInvariant()} {path.Name}"] = operation.Value.GetProperty("x-hostvm-access").GetString()!;
            }
        }

        Assert.Empty(served.Keys.Except(ExpectedAccess.Keys)); // a new route: add it above, with its access
        Assert.Empty(ExpectedAccess.Keys.Except(served.Keys));
        foreach (var (route, access) in ExpectedAccess)
        {
            Assert.True(access == served[route], $"{route}: the daemon says {served[route]}, the specification {access}");
        }

        var calls = new List<Call>();
        var failures = new List<string>();
        using var nobody = daemon.ClientWith(null);
        using var forged = daemon.ClientWith("hvt_0123456789abcdef_not-the-secret");
        foreach (var (route, access) in ExpectedAccess)
        {
            string method = route[..route.IndexOf(' ', StringComparison.Ordinal)];
            string pattern = route[(method.Length + 1)..];
            bool hasObject = pattern.Contains('{', StringComparison.Ordinal) && !HostObjects.Contains(route);
            foreach (string target in new[] { "alpha", "beta" })
            {
                foreach (var (label, client) in new[] { ("no token", nobody), ("forged token", forged) })
                {
                    int status = await SendAsync(daemon, client, method, pattern, target, label, "anonymous", calls);
                    Expect(failures, route, label, target, status, status == 401, "401");
                }

                foreach (var p in principals)
                {
                    await EnsureFixturesAsync(daemon, kernel);
                    int status = await SendAsync(daemon, p.Client, method, pattern, target, p.Label, p.Id, calls);
                    bool mayByRole = access switch
                    {
                        "read" => true,
                        "operate" => p.Role is "operator" or "admin",
                        "admin" => p.Role == "admin",
                        "host-admin" => p.Role == "admin" && p.Project is null,
                        _ => throw new InvalidOperationException(access),
                    };
                    bool other = p.Project is not null && target != p.Project;
                    if (!mayByRole)
                    {
                        Expect(failures, route, p.Label, target, status, status == 403, "403");
                    }
                    else if (other && (hasObject || method != "GET"))
                    {
                        // Another project's object, or a new one asked for in another project: as if it did not exist.
                        Expect(failures, route, p.Label, target, status, status == 404, "404");
                    }
                    else
                    {
                        // The VMM here is /bin/false: a start gets past access control and then fails with 500 vmm-failed.
                        bool vmmFails = pattern.EndsWith("/start", StringComparison.Ordinal) || pattern.EndsWith("/restart", StringComparison.Ordinal);
                        Expect(failures, route, p.Label, target, status, status is not (401 or 403 or 404) && (status < 500 || (vmmFails && status == 500)), "allowed (not 401/403/404/5xx)");
                    }
                }
            }
        }

        if (Directory.Exists(_poolRoot))
        {
            Directory.Delete(_poolRoot, recursive: true);
        }

        Assert.True(failures.Count == 0, $"{failures.Count} wrong answers:\n{string.Join('\n', failures)}");

        // A project's token lists only its project's objects.
        foreach (var p in principals.Where(p => p.Project == "alpha"))
        {
            foreach (string list in new[] { "/v1/vms", "/v1/images", "/v1/networks", "/v1/volumes", "/v1/projects", "/v1/events?limit=10000" })
            {
                using var items = JsonDocument.Parse(await p.Client.GetStringAsync(list));
                foreach (var item in items.RootElement.EnumerateArray())
                {
                    string? project = list == "/v1/projects" ? item.GetProperty("name").GetString() : item.GetProperty("project").GetString();
                    Assert.True(project == "alpha", $"{p.Label} GET {list} shows an object of project '{project}': {item}");
                }
            }

            string metrics = await p.Client.GetStringAsync("/metrics");
            Assert.Contains("vm=\"vm-alpha\"", metrics, StringComparison.Ordinal);
            Assert.DoesNotContain("vm=\"vm-beta\"", metrics, StringComparison.Ordinal);

            using var hostStats = JsonDocument.Parse(await p.Client.GetStringAsync("/v1/host/stats"));
            var statsNames = hostStats.RootElement.GetProperty("vms").EnumerateArray().Select(v => v.GetProperty("name").GetString()).ToList();
            Assert.Contains("vm-alpha", statsNames);
            Assert.DoesNotContain("vm-beta", statsNames);

            // The event stream replays (since_id=0) exactly the events GET /v1/events shows this token: its project's.
            using var listed = JsonDocument.Parse(await p.Client.GetStringAsync("/v1/events?limit=10000"));
            int expected = listed.RootElement.GetArrayLength();
            using var stream = await p.Client.SendAsync(new HttpRequestMessage(HttpMethod.Get, "/v1/events/stream?since_id=0"), HttpCompletionOption.ResponseHeadersRead);
            using var reader = new StreamReader(await stream.Content.ReadAsStreamAsync());
            using var enough = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            for (int seen = 0; seen < expected;)
            {
                string line = await reader.ReadLineAsync(enough.Token) ?? throw new InvalidOperationException("the event stream ended early");
                if (line.StartsWith("data: ", StringComparison.Ordinal))
                {
                    using var e = JsonDocument.Parse(line[6..]);
                    Assert.Equal("alpha", e.RootElement.GetProperty("project").GetString());
                    seen++;
                }
            }
        }

        // Every mutating call made above is in the audit log, with who made it and how it ended.
        using var audit = JsonDocument.Parse(await admin.GetStringAsync("/v1/audit?limit=10000"));
        var missing = DaemonUnderTest.Unaudited(
            calls.Where(c => c.Method != "GET"), audit.RootElement,
            e => new Call(e.GetProperty("method").GetString()!, e.GetProperty("path").GetString()!, e.GetProperty("who").GetString()!, e.GetProperty("status").GetInt32()),
            c => c.Status);
        Assert.True(missing.Count == 0, $"mutating calls missing from the audit log:\n{string.Join('\n', missing)}");
    }

    private static void Expect(List<string> failures, string route, string who, string target, int status, bool ok, string expected)
    {
        if (!ok)
        {
            failures.Add($"{route} as {who} on {target}'s object: {status}, expected {expected}");
        }
    }

    /// <summary>Fills the route's parameter with the target project's object and sends a body that would be valid there.</summary>
    private async Task<int> SendAsync(DaemonUnderTest daemon, HttpClient client, string method, string pattern, string target, string label, string who, List<Call> calls)
    {
        int n = Interlocked.Increment(ref _serial);
        string path = pattern
            .Replace("/v1/images/{name}", $"/v1/images/img-{target}", StringComparison.Ordinal)
            .Replace("/v1/networks/{name}", $"/v1/networks/net-{target}", StringComparison.Ordinal)
            .Replace("/forwards/{protocol}/{port}", $"/forwards/tcp/{ForwardPorts.GetValueOrDefault(target)}", StringComparison.Ordinal)
            .Replace("/v1/projects/{name}", $"/v1/projects/{target}", StringComparison.Ordinal)
            .Replace("/v1/pools/{name}", "/v1/pools/default", StringComparison.Ordinal)
            .Replace("/v1/volumes/{pool}/{name}", method == "PUT" ? $"/v1/volumes/default/vol-new-{n}" : $"/v1/volumes/default/vol-{target}", StringComparison.Ordinal)
            .Replace("{vm}", $"vm-{target}", StringComparison.Ordinal)
            .Replace("/disks/{disk}/bitmaps/{name}", "/disks/vol0/bitmaps/b", StringComparison.Ordinal)
            .Replace("{disk}", "vol0", StringComparison.Ordinal)
            .Replace("{id}", VictimTokens.TryGetValue(target, out string? id) ? id : "0000000000000000", StringComparison.Ordinal);
        if (method == "PUT" && pattern.StartsWith("/v1/volumes/", StringComparison.Ordinal))
        {
            path += $"?project={target}"; // an import names the project its new volume goes into
        }

        object? body = (method, pattern) switch
        {
            ("POST", "/v1/pools") => new { name = $"pool-new-{n}", path = Path.Combine(_poolRoot, $"pool-{n}") },
            ("POST", "/v1/volumes") => new { name = $"vol-new-{n}", size_bytes = 1 << 20, project = target },
            ("POST", "/v1/volumes/{pool}/{name}/serve") => new { listen = "127.0.0.1:0" },
            ("PATCH", "/v1/volumes/{pool}/{name}") => new { size_bytes = 2 << 20 },
            ("PUT", "/v1/vms/{vm}/disks/{disk}/bitmaps") => new { action = "add", name = $"b{n}" },
            ("POST", "/v1/images") => new { name = $"img-new-{n}", kernel = "kernel", project = target },
            ("POST", "/v1/vms") => new { name = $"vm-new-{n}", image = $"img-{target}", project = target },
            ("POST", "/v1/networks") => new { name = $"net-new-{n}", project = target },
            ("PUT", "/v1/networks/{name}/egress") => new { allow = new[] { "10.1.2.3:5432" } },
            ("POST", "/v1/networks/{name}/forwards") => new { vm = $"vm-{target}", guest_port = 80 },
            ("POST", "/v1/tokens") => new { role = "viewer", project = target },
            ("POST", "/v1/projects") => new { name = $"proj-new-{n}" },
            ("PATCH", "/v1/vms/{vm}") => new { restart_policy = "never" },
            ("PATCH", "/v1/projects/{name}") => new { description = $"changed by {label}" },
            ("POST", _) => new { },
            _ => null,
        };
        using var request = new HttpRequestMessage(new HttpMethod(method), path);
        if (body is not null)
        {
            request.Content = new StringContent(JsonSerializer.Serialize(body), Encoding.UTF8, "application/json");
        }

        // Headers only: the status is all that is judged, and the event stream's body never ends.
        using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        calls.Add(new Call(method, path, who, (int)response.StatusCode));
        return (int)response.StatusCode;
    }

    private Dictionary<string, string> VictimTokens { get; } = [];

    /// <summary>The host port of each project's forward (on its network, to its VM), made again when a call removed it.</summary>
    private Dictionary<string, int> ForwardPorts { get; } = [];

    /// <summary>Puts back what an allowed call deleted: each project's image, network, stopped VM, volume and a token to revoke.</summary>
    private async Task EnsureFixturesAsync(DaemonUnderTest daemon, string kernel)
    {
        foreach (string project in new[] { "alpha", "beta" })
        {
            if ((await daemon.SendAsync(HttpMethod.Get, $"/v1/images/img-{project}")).Status == 404)
            {
                Assert.Equal(201, (await daemon.SendAsync(HttpMethod.Post, "/v1/images", new { name = $"img-{project}", kernel, project })).Status);
            }

            if ((await daemon.SendAsync(HttpMethod.Get, $"/v1/networks/net-{project}")).Status == 404)
            {
                Assert.Equal(201, (await daemon.SendAsync(HttpMethod.Post, "/v1/networks", new { name = $"net-{project}", project, nat = true })).Status);
            }

            if ((await daemon.SendAsync(HttpMethod.Get, $"/v1/volumes/default/vol-{project}")).Status == 404)
            {
                Assert.Equal(201, (await daemon.SendAsync(HttpMethod.Post, "/v1/volumes", new { name = $"vol-{project}", size_bytes = 1 << 20, project })).Status);
            }

            // The VM has the volume as its disk vol0 (the bitmap routes' disk).
            var (status, vm) = await daemon.SendAsync(HttpMethod.Get, $"/v1/vms/vm-{project}");
            if (status == 404)
            {
                Assert.Equal(201, (await daemon.SendAsync(HttpMethod.Post, "/v1/vms", new
                {
                    name = $"vm-{project}", image = $"img-{project}", project, volumes = new[] { $"default/vol-{project}" }, networks = new[] { new { network = $"net-{project}" } },
                })).Status);
            }

            // The VM has a forward on its network (the forward routes' object).
            var (_, forwards) = await daemon.SendAsync(HttpMethod.Get, $"/v1/networks/net-{project}/forwards");
            if (!ForwardPorts.TryGetValue(project, out int port) || !forwards.EnumerateArray().Any(f => f.GetProperty("host_port").GetInt32() == port))
            {
                var (added, forward) = await daemon.SendAsync(HttpMethod.Post, $"/v1/networks/net-{project}/forwards", new { vm = $"vm-{project}", guest_port = 22 });
                Assert.Equal(201, added);
                ForwardPorts[project] = forward.GetProperty("host_port").GetInt32();
            }

            if (!VictimTokens.ContainsKey(project))
            {
                var (_, token) = await daemon.SendAsync(HttpMethod.Post, "/v1/tokens", new { role = "viewer", project, description = "to be revoked" });
                VictimTokens[project] = token.GetProperty("details").GetProperty("id").GetString()!;
            }
        }
    }
}
