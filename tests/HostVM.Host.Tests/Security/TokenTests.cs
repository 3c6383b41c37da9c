using HostVM.Host.Api;
using HostVM.Host.Inventory;
using HostVM.Host.Security;
using HostVM.Host.Supervision;
using Microsoft.Extensions.Time.Testing;

namespace HostVM.Host.Tests.Security;

/// <summary>Tokens, roles, the failure throttle, durations and quotas: the rules under access control.</summary>
public sealed class TokenTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("hostvm-tokens-").FullName;

    [Fact]
    public void ATokenParsesIntoItsIdAndSecretAndOnlyItsOwnSecretMatches()
    {
        var (id, token, hash) = ApiTokens.Create();
        Assert.Matches("^hvt_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$", token);
        Assert.True(ApiTokens.TryParse(token, out string parsedId, out string secret));
        Assert.Equal(id, parsedId);
        Assert.True(ApiTokens.Matches(secret, hash));
        Assert.False(ApiTokens.Matches(secret[..^1] + (secret[^1] == 'A' ? 'B' : 'A'), hash));
        Assert.NotEqual(token, ApiTokens.Create().Token);
        foreach (string bad in new[] { "", "hvt_", "hvt_0123_x", "hvt_0123456789ABCDEF_x", "xyz_0123456789abcdef_x", "hvt_0123456789abcdef_", "hvt_0123456789abcdef" + new string('x', 200) })
        {
            Assert.False(ApiTokens.TryParse(bad, out _, out _), bad);
        }
    }

    [Fact]
    public void TheServiceRefusesUnknownRevokedAndExpiredTokensAndRemembersAcrossReopening()
    {
        var time = new FakeTimeProvider(DateTimeOffset.Parse("2026-01-01T00:00:00Z", System.Globalization.CultureInfo.InvariantCulture));
        string db = Path.Combine(_dir, "hostvm.db");
        string forever, expiring, revoked;
        using (var inventory = new InventoryStore(db))
        {
            var service = new TokenService(inventory, time);
            Assert.True(service.IsEmpty);
            forever = service.Create(Roles.Admin, null, null, "admin", "test").Token;
            expiring = service.Create(Roles.Viewer, "default", time.GetUtcNow().AddHours(1), "an hour", "test").Token;
            var made = service.Create(Roles.Operator, "default", null, "to revoke", "test");
            revoked = made.Token;
            service.Revoke(made.Record.Id);
            Assert.NotNull(service.Authenticate(expiring).Token);
        }

        time.Advance(TimeSpan.FromHours(2));
        using (var inventory = new InventoryStore(db))
        {
            var service = new TokenService(inventory, time);
            Assert.Equal(Roles.Admin, service.Authenticate(forever).Token?.Role);
            Assert.Contains("expired", service.Authenticate(expiring).Refusal, StringComparison.Ordinal);
            Assert.Contains("revoked", service.Authenticate(revoked).Refusal, StringComparison.Ordinal);
            Assert.Equal("The token is not valid.", service.Authenticate(forever[..^2] + "zz").Refusal);
            Assert.Equal("The token is not valid.", service.Authenticate("hvt_0123456789abcdef_" + forever[^43..]).Refusal);
            Assert.Equal(3, service.List().Count);
        }
    }

    [Theory]
    [InlineData("viewer", null, "read")]
    [InlineData("operator", null, "read,operate")]
    [InlineData("admin", "alpha", "read,operate,admin")]
    [InlineData("admin", null, "read,operate,admin,host-admin")]
    public void ARoleMayWhatItsRankAllowsAndOnlyAnUnscopedAdminIsTheHosts(string role, string? project, string allowed)
    {
        var caller = new Caller("t", role, project, "127.0.0.1");
        foreach (var access in Enum.GetValues<Access>())
        {
            bool expected = access == Access.Anyone || allowed.Split(',').Contains(OpenApiDescription.Name(access));
            Assert.True(expected == caller.May(access), $"{role}@{project}: {access}");
        }

        Assert.True(caller.Sees("alpha"));
        Assert.Equal(project is null, caller.Sees("beta"));
        Assert.False(Caller.Anonymous("x").May(Access.Read));
        Assert.True(Caller.Local.May(Access.HostAdmin));
    }

    [Fact]
    public void FailuresPastTheLimitWithinTheWindowAreThrottledAndTheWindowSlides()
    {
        var time = new FakeTimeProvider();
        var throttle = new AuthFailureThrottle(3, TimeSpan.FromMinutes(1), time);
        for (int i = 0; i < 3; i++)
        {
            Assert.Null(throttle.Fail("10.0.0.1"));
            time.Advance(TimeSpan.FromSeconds(10));
        }

        var retry = throttle.Fail("10.0.0.1");
        Assert.NotNull(retry);
        Assert.InRange(retry.Value.TotalSeconds, 1, 60);
        Assert.Null(throttle.Fail("10.0.0.2")); // another address is its own count
        time.Advance(TimeSpan.FromMinutes(2));
        Assert.Null(throttle.Fail("10.0.0.1"));
    }

    [Theory]
    [InlineData("90s", 90)]
    [InlineData("30m", 1800)]
    [InlineData("12h", 43200)]
    [InlineData("7d", 604800)]
    [InlineData("2w", 1209600)]
    public void DurationsAreANumberAndAUnit(string text, int seconds) => Assert.Equal(TimeSpan.FromSeconds(seconds), Durations.Parse(text, "expires_in"));

    [Theory]
    [InlineData("")]
    [InlineData("10")]
    [InlineData("-5d")]
    [InlineData("0h")]
    [InlineData("5y")]
    [InlineData("99999d")]
    public void BadDurationsAreRefusedNamingTheField(string text) =>
        Assert.Equal("expires_in", Assert.Single(Assert.Throws<ApiProblem>(() => Durations.Parse(text, "expires_in")).Errors!).Key);

    [Fact]
    public void QuotasCountEveryVmOfTheProjectAndNameEachOneExceeded()
    {
        VmRecord Vm(string name, int vcpus, long memory, long disk) => new() { Id = name, Name = name, Image = "i", State = VmStates.Stopped, Vcpus = vcpus, MemoryMib = memory, DiskMib = disk };
        var quotas = new ProjectQuotas { MaxVms = 3, MaxVcpus = 4, MaxMemoryMib = 512, MaxDiskMib = 1000 };
        var existing = new[] { Vm("a", 2, 256, 500), Vm("b", 1, 128, 400) };
        QuotaCheck.Admit("p", quotas, existing, Vm("c", 1, 128, 100));
        var problem = Assert.Throws<ApiProblem>(() => QuotaCheck.Admit("p", quotas, existing, Vm("c", 2, 256, 200)));
        Assert.Equal(409, problem.Status);
        Assert.Equal(["max_memory_mib", "max_vcpus"], problem.Errors!.Keys.Order()); // disk: what volumes allocate (VolumeManagerTests)
        QuotaCheck.Admit("p", new ProjectQuotas(), existing, Vm("c", 64, 1 << 20, 1 << 30)); // no quotas, no limit
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);
}
