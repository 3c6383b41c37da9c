using System.Net;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Xunit;

namespace HostVM.Integration.Tests;

/// <summary>Tokens, projects and quotas, and the abuse rules, against a real daemon (no guest needed: its VMMs are never started).</summary>
public sealed class AccessControlTests
{
    [Fact]
    public async Task ExpiredRevokedAndForgedTokensAreRefusedAndOnlyTheHashIsStored()
    {
        using var daemon = await DaemonUnderTest.StartAsync();
        var (status, created) = await daemon.SendAsync(HttpMethod.Post, "/v1/tokens", new { role = "viewer", expires_in = "2s", description = "short-lived" });
        Assert.Equal(201, status);
        string shortLived = created.GetProperty("token").GetString()!;
        (_, created) = await daemon.SendAsync(HttpMethod.Post, "/v1/tokens", new { role = "operator" });
        string revoked = created.GetProperty("token").GetString()!;
        string revokedId = created.GetProperty("details").GetProperty("id").GetString()!;

        using (var client = daemon.ClientWith(shortLived))
        {
            Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/v1/vms")).StatusCode);
            await Task.Delay(2500);
            using var expired = await client.GetAsync("/v1/vms");
            Assert.Equal(HttpStatusCode.Unauthorized, expired.StatusCode);
            Assert.Contains("expired", await expired.Content.ReadAsStringAsync(), StringComparison.Ordinal);
            Assert.Equal("application/problem+json", expired.Content.Headers.ContentType?.MediaType);
        }

        using (var client = daemon.ClientWith(revoked))
        {
            Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/v1/vms")).StatusCode);
            Assert.Equal(204, (await daemon.SendAsync(HttpMethod.Delete, $"/v1/tokens/{revokedId}")).Status);
            using var refused = await client.GetAsync("/v1/vms");
            Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
            Assert.Contains("revoked", await refused.Content.ReadAsStringAsync(), StringComparison.Ordinal);
            Assert.NotNull((await daemon.GetAsync($"/v1/tokens/{revokedId}")).GetProperty("revoked_at").GetString());
        }

        // A right id with a wrong secret, a wrong prefix, another scheme: all 401 with a Bearer challenge.
        string wrongSecret = revoked[..^4] + "AAAA";
        foreach (string header in new[] { $"Bearer {wrongSecret}", "Bearer hvt_nothex_x", "Basic YWRtaW46YWRtaW4=", "Bearer " })
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, "/v1/vms");
            request.Headers.TryAddWithoutValidation("Authorization", header);
            using var response = await daemon.ClientWith(null).SendAsync(request);
            Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
            Assert.StartsWith("Bearer", response.Headers.WwwAuthenticate.ToString(), StringComparison.Ordinal);
        }

        // The inventory holds hashes: no token's secret is in the database or its WAL.
        foreach (string file in Directory.GetFiles(daemon.DataDir, "hostvm.db*"))
        {
            byte[] bytes = await File.ReadAllBytesAsync(file);
            foreach (string token in new[] { shortLived, revoked, daemon.Token! })
            {
                string secret = token["hvt_0123456789abcdef_".Length..]; // the secret itself may hold '_' (base64url)
                Assert.Equal(43, secret.Length);
                Assert.True(Encoding.ASCII.GetString(bytes).IndexOf(secret, StringComparison.Ordinal) < 0, $"{Path.GetFileName(file)} holds a token's secret");
            }
        }
    }

    [Fact]
    public async Task RepeatedFailedAuthenticationFromOneAddressIsSlowedDownAndValidTokensStillWork()
    {
        string config = Path.Combine(Path.GetTempPath(), $"hostvm-throttle-{Guid.NewGuid():N}.json");
        await File.WriteAllTextAsync(config, """{"auth_failure_limit": 3}""");
        using var daemon = await DaemonUnderTest.StartAsync("--config", config);
        File.Delete(config);
        using var forged = daemon.ClientWith("hvt_0123456789abcdef_guess");
        for (int i = 0; i < 3; i++)
        {
            Assert.Equal(HttpStatusCode.Unauthorized, (await forged.GetAsync("/v1/host")).StatusCode);
        }

        using var slowed = await forged.GetAsync("/v1/host");
        Assert.Equal(HttpStatusCode.TooManyRequests, slowed.StatusCode);
        Assert.True(slowed.Headers.RetryAfter?.Delta > TimeSpan.Zero, "429 says when to retry");
        Assert.Equal(HttpStatusCode.OK, (await daemon.Client.GetAsync("/v1/host")).StatusCode);

        // A mutating attempt with a forged token is in the audit log too.
        Assert.Equal(HttpStatusCode.TooManyRequests, (await forged.PostAsJsonAsync("/v1/networks", new { name = "nope" })).StatusCode);
        var entry = (await daemon.GetAsync("/v1/audit?limit=1"))[0];
        Assert.Equal("anonymous", entry.GetProperty("who").GetString());
        Assert.Equal(429, entry.GetProperty("status").GetInt32());
        Assert.Equal("network.create", entry.GetProperty("action").GetString());
    }

    [Fact]
    public async Task TenThousandAnonymousMutatingRequestsGrowTheAuditTableByABoundedAmountAndAreThrottled()
    {
        using var daemon = await DaemonUnderTest.StartAsync();
        int before = (await daemon.GetAsync("/v1/audit?limit=10000")).GetArrayLength();
        using var handler = new SocketsHttpHandler { MaxConnectionsPerServer = 16, SslOptions = { RemoteCertificateValidationCallback = daemon.ValidateCertificate } };
        using var nobody = new HttpClient(handler) { BaseAddress = daemon.Client.BaseAddress };
        const int requests = 10_000;
        var statuses = new int[requests];
        var watch = System.Diagnostics.Stopwatch.StartNew();
        await Parallel.ForEachAsync(Enumerable.Range(0, requests), new ParallelOptions { MaxDegreeOfParallelism = 16 }, async (i, token) =>
        {
            using var response = await nobody.PostAsync($"/v1/networks?n={i}", JsonContent.Create(new { name = $"flood-{i}" }), token);
            statuses[i] = (int)response.StatusCode;
        });

        // Past auth_failure_limit (10 a minute) each one is 429, answered at once: no token, nothing to guess.
        Assert.Equal(requests, statuses.Count(s => s is 401 or 429));
        Assert.True(statuses.Count(s => s == 401) <= 10, $"{statuses.Count(s => s == 401)} answered 401");
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(120), $"took {watch.Elapsed}");

        // A few entries of their own, and counts (method "*") that account for every one of them.
        var audit = await daemon.GetAsync("/v1/audit?limit=10000");
        var added = audit.EnumerateArray().Where(e => e.GetProperty("who").GetString() == "anonymous").ToList();
        Assert.Equal(audit.GetArrayLength() - before, added.Count);
        Assert.True(added.Count <= 20 + 2, $"the flood added {added.Count} audit entries");
        Assert.Equal(requests, added.Sum(e => e.GetProperty("count").GetInt32()));
        Assert.Equal(requests - statuses.Count(s => s == 401), added.Where(e => e.GetProperty("status").GetInt32() == 429).Sum(e => e.GetProperty("count").GetInt32()));
        var counted = added.Single(e => e.GetProperty("method").GetString() == "*" && e.GetProperty("status").GetInt32() == 429);
        Assert.Equal("127.0.0.1", counted.GetProperty("remote").GetString());
        Assert.Contains("counted, not recorded one by one", counted.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.OK, (await daemon.Client.GetAsync("/v1/host")).StatusCode); // a token still works meanwhile
    }

    [Fact]
    public async Task MetricsNeedATokenUnlessTheDaemonIsToldToServeThemToAnyone()
    {
        using (var daemon = await DaemonUnderTest.StartAsync())
        {
            using var nobody = daemon.ClientWith(null);
            Assert.Equal(HttpStatusCode.Unauthorized, (await nobody.GetAsync("/metrics")).StatusCode);
            Assert.Equal(HttpStatusCode.OK, (await daemon.Client.GetAsync("/metrics")).StatusCode);
            Assert.Equal(HttpStatusCode.OK, (await nobody.GetAsync("/openapi/v1.json")).StatusCode);
        }

        string config = Path.Combine(Path.GetTempPath(), $"hostvm-metrics-{Guid.NewGuid():N}.json");
        await File.WriteAllTextAsync(config, """{"metrics_public": true}""");
        using (var daemon = await DaemonUnderTest.StartAsync("--config", config))
        {
            File.Delete(config);
            using var nobody = daemon.ClientWith(null);
            using var metrics = await nobody.GetAsync("/metrics");
            Assert.Equal(HttpStatusCode.OK, metrics.StatusCode);
            Assert.Contains("hostvm_host_vcpus_capacity", await metrics.Content.ReadAsStringAsync(), StringComparison.Ordinal);
            Assert.Equal(HttpStatusCode.Unauthorized, (await nobody.GetAsync("/v1/vms")).StatusCode); // only the metrics are open
        }
    }

    [Fact]
    public async Task ProjectQuotasRefuseWhatExceedsThemAndNothingIsHalfMade()
    {
        using var daemon = await DaemonUnderTest.StartAsync();
        string kernel = Path.Combine(daemon.DataDir, "import", "kernel");
        await File.WriteAllBytesAsync(kernel, new byte[4096]);
        Assert.Equal(201, (await daemon.SendAsync(HttpMethod.Post, "/v1/projects", new { name = "small", quotas = new { max_vms = 2, max_vcpus = 3, max_memory_mib = 384 } })).Status);
        Assert.Equal(201, (await daemon.SendAsync(HttpMethod.Post, "/v1/images", new { name = "img", kernel, project = "small" })).Status);
        var (_, created) = await daemon.SendAsync(HttpMethod.Post, "/v1/tokens", new { role = "operator", project = "small" });
        using var operatorClient = daemon.ClientWith(created.GetProperty("token").GetString());

        async Task<(int Status, JsonElement Body)> CreateAsync(object body)
        {
            using var response = await operatorClient.PostAsJsonAsync("/v1/vms", body);
            string text = await response.Content.ReadAsStringAsync();
            return ((int)response.StatusCode, JsonDocument.Parse(text).RootElement.Clone());
        }

        var (status, vm) = await CreateAsync(new { name = "one", image = "img", vcpus = 2, memory_mib = 256 });
        Assert.Equal(201, status);
        Assert.Equal("small", vm.GetProperty("project").GetString()); // the token's project, without asking

        // 2 + 2 vCPUs > 3, and 256 + 256 MiB > 384: both named.
        var (refused, problem) = await CreateAsync(new { name = "two", image = "img", vcpus = 2, memory_mib = 256 });
        Assert.Equal(409, refused);
        Assert.EndsWith("/quota-exceeded", problem.GetProperty("type").GetString(), StringComparison.Ordinal);
        Assert.True(problem.GetProperty("errors").TryGetProperty("max_vcpus", out _));
        Assert.True(problem.GetProperty("errors").TryGetProperty("max_memory_mib", out _));
        Assert.Equal(404, (await daemon.SendAsync(HttpMethod.Get, "/v1/vms/two")).Status);
        Assert.DoesNotContain(Directory.EnumerateDirectories(Path.Combine(daemon.DataDir, "vms")), d => d.EndsWith(".creating", StringComparison.Ordinal));

        Assert.Equal(201, (await CreateAsync(new { name = "two", image = "img", vcpus = 1, memory_mib = 128 })).Status);
        (refused, problem) = await CreateAsync(new { name = "three", image = "img", vcpus = 0 + 1, memory_mib = 64 });
        Assert.Equal(409, refused);
        Assert.True(problem.GetProperty("errors").TryGetProperty("max_vms", out _));

        var project = await daemon.GetAsync("/v1/projects/small");
        Assert.Equal(2, project.GetProperty("usage").GetProperty("vms").GetInt32());
        Assert.Equal(3, project.GetProperty("usage").GetProperty("vcpus").GetInt32());

        // Raising the quota lets it in; the operator of the project cannot raise it itself.
        using (var response = await operatorClient.PatchAsJsonAsync("/v1/projects/small", new { quotas = new { max_vms = 5 } }))
        {
            Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
        }

        Assert.Equal(200, (await daemon.SendAsync(HttpMethod.Patch, "/v1/projects/small", new { quotas = new { max_vms = 3 } })).Status);
        Assert.Equal(201, (await CreateAsync(new { name = "three", image = "img", vcpus = 1, memory_mib = 64 })).Status);
        Assert.Equal(409, (await daemon.SendAsync(HttpMethod.Delete, "/v1/projects/small")).Status); // not empty
    }

    [Fact]
    public async Task TheFirstStartPrintsOneAdminTokenAndTheLocalSocketNeedsNone()
    {
        using var daemon = await DaemonUnderTest.StartAsync();
        Assert.StartsWith("hvt_", daemon.Token, StringComparison.Ordinal);
        var tokens = await daemon.GetAsync("/v1/tokens");
        Assert.Equal("admin", tokens[0].GetProperty("role").GetString());
        Assert.Equal(JsonValueKind.Null, tokens[0].GetProperty("project").ValueKind);

        await daemon.KillAndRestartAsync();
        Assert.DoesNotContain("admin token", daemon.Process.Output, StringComparison.Ordinal); // shown once: not again
        Assert.Equal(1, (await daemon.GetAsync("/v1/tokens")).GetArrayLength());

        // The owner's Unix socket (mode 0600) is the host admin's way in, without a token.
        string socket = Path.Combine(daemon.RuntimeDir, "hostvm.sock");
        if (!OperatingSystem.IsWindows())
        {
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(socket));
        }

        using var local = new HttpClient(new SocketsHttpHandler
        {
            ConnectCallback = async (_, token) =>
            {
                var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                await s.ConnectAsync(new UnixDomainSocketEndPoint(socket), token);
                return new NetworkStream(s, ownsSocket: true);
            },
        }) { BaseAddress = new Uri("http://localhost/") };
        using var response = await local.PostAsJsonAsync("/v1/tokens", new { role = "admin" });
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        var entry = (await daemon.GetAsync("/v1/audit?limit=1"))[0];
        Assert.Equal("local", entry.GetProperty("who").GetString());
        Assert.Equal("unix", entry.GetProperty("remote").GetString());
    }

    [Fact]
    public async Task ImportsOpenOnlyRegularFilesBeneathTheCallersOwnImportDirectory()
    {
        using var daemon = await DaemonUnderTest.StartAsync();
        string import = Path.Combine(daemon.DataDir, "import");
        string key = Path.Combine(daemon.DataDir, "tls", "server.key");
        Assert.True(File.Exists(key), "the daemon's TLS key, the secret a swapped symlink would leak");
        var tenants = new Dictionary<string, HttpClient>();
        foreach (string project in new[] { "a", "b" })
        {
            Assert.Equal(201, (await daemon.SendAsync(HttpMethod.Post, "/v1/projects", new { name = project })).Status);
            var (_, created) = await daemon.SendAsync(HttpMethod.Post, "/v1/tokens", new { role = "operator", project });
            tenants[project] = daemon.ClientWith(created.GetProperty("token").GetString());
            Directory.CreateDirectory(Path.Combine(import, project, "sub"));
        }

        byte[] kernelA = System.Security.Cryptography.RandomNumberGenerator.GetBytes(8192);
        await File.WriteAllBytesAsync(Path.Combine(import, "a", "sub", "kernel"), kernelA);
        await File.WriteAllBytesAsync(Path.Combine(import, "b", "kernel-b"), new byte[4096]);
        await File.WriteAllBytesAsync(Path.Combine(import, "top-kernel"), new byte[4096]);
        // A symlink at each component: the file itself, a directory on the way, and one that climbs out.
        File.CreateSymbolicLink(Path.Combine(import, "a", "key"), key);
        Directory.CreateSymbolicLink(Path.Combine(import, "a", "tls"), Path.GetDirectoryName(key)!);
        Directory.CreateSymbolicLink(Path.Combine(import, "a", "sub", "up"), daemon.DataDir);
        File.CreateSymbolicLink(Path.Combine(import, "a", "same"), Path.Combine(import, "a", "sub", "kernel"));
        File.CreateSymbolicLink(Path.Combine(import, "key"), key);
        using (var mkfifo = System.Diagnostics.Process.Start("mkfifo", Path.Combine(import, "a", "fifo")))
        {
            await mkfifo.WaitForExitAsync();
            Assert.Equal(0, mkfifo.ExitCode);
        }

        async Task<(int Status, string Body)> ImportAsync(HttpClient client, string name, string kernel)
        {
            using var response = await client.PostAsJsonAsync("/v1/images", new { name, kernel });
            return ((int)response.StatusCode, await response.Content.ReadAsStringAsync());
        }

        // A normal import: the file's bytes, in a file only the daemon's user may read.
        var (status, body) = await ImportAsync(tenants["a"], "a-kernel", "sub/kernel");
        Assert.True(status == 201, body);
        string stored = Path.Combine(daemon.DataDir, "images", "a-kernel", "kernel");
        Assert.Equal(kernelA, await File.ReadAllBytesAsync(stored));
        Assert.True(OperatingSystem.IsWindows() || File.GetUnixFileMode(stored) == (UnixFileMode.UserRead | UnixFileMode.UserWrite), "the copy is 0600");

        foreach (string path in new[] { "key", "tls/server.key", "sub/up/tls/server.key", "same", Path.Combine(import, "a", "tls", "server.key") })
        {
            (status, body) = await ImportAsync(tenants["a"], "leak", path);
            Assert.True(status == 400 && body.Contains("symlink", StringComparison.Ordinal), $"{path}: {status} {body}");
        }

        // A FIFO (no writer will ever come) is refused at once, not waited on.
        var clock = System.Diagnostics.Stopwatch.StartNew();
        (status, body) = await ImportAsync(tenants["a"], "hang", "fifo");
        Assert.True(status == 400 && body.Contains("not a regular file", StringComparison.Ordinal), body);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(2), $"{clock.ElapsedMilliseconds} ms");

        // A tenant reads its own directory only: not another project's, not the top level.
        foreach (string path in new[] { "../b/kernel-b", Path.Combine(import, "b", "kernel-b"), "../top-kernel", Path.Combine(import, "top-kernel") })
        {
            (status, body) = await ImportAsync(tenants["a"], "theft", path);
            Assert.True(status == 400 && body.Contains("outside", StringComparison.Ordinal), $"{path}: {status} {body}");
        }

        Assert.Equal(201, (await ImportAsync(tenants["b"], "b-kernel", "kernel-b")).Status);
        (status, body) = await ImportAsync(tenants["b"], "b-theft", "../a/sub/kernel");
        Assert.Equal(400, status);

        // The host's admin reads the import directories as before, every project's included, and no symlink either.
        Assert.Equal(201, (await ImportAsync(daemon.Client, "top", "top-kernel")).Status);
        Assert.Equal(201, (await ImportAsync(daemon.Client, "from-a", "a/sub/kernel")).Status);
        Assert.Equal(400, (await ImportAsync(daemon.Client, "admin-leak", "key")).Status);

        // Nothing refused left an image or a copy of the key behind.
        byte[] secret = await File.ReadAllBytesAsync(key);
        Assert.Equal(["a-kernel", "b-kernel", "from-a", "top"], (await daemon.GetAsync("/v1/images")).EnumerateArray().Select(i => i.GetProperty("name").GetString()).Order(StringComparer.Ordinal));
        Assert.DoesNotContain(Directory.EnumerateFiles(Path.Combine(daemon.DataDir, "images"), "*", SearchOption.AllDirectories), f => File.ReadAllBytes(f).AsSpan().SequenceEqual(secret));
        foreach (var client in tenants.Values)
        {
            client.Dispose();
        }
    }
}
