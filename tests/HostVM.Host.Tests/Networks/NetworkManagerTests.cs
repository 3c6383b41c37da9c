using HostVM.Host.Api;
using HostVM.Host.Inventory;
using HostVM.Host.Networks;

namespace HostVM.Host.Tests.Networks;

/// <summary>Named networks on a real inventory and runtime directory (no NAT: these need no sockets).</summary>
public sealed class NetworkManagerTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("hostvm-networks-").FullName;

    [Fact]
    public void AProjectAtItsNetworkQuotaIsRefusedWithQuotaExceededUntilItDeletesOne()
    {
        using var inventory = new InventoryStore(Path.Combine(_root, "hostvm.db"));
        inventory.PutProject(new ProjectRecord { Name = "alpha", Quotas = new ProjectQuotas { MaxNetworks = 1 } });
        using var networks = new NetworkManager(new HostSettings { DataDir = _root, RuntimeDir = Path.Combine(_root, "run") }, inventory);

        networks.Create(new CreateNetworkRequest { Name = "a1", Project = "alpha" });
        networks.Create(new CreateNetworkRequest { Name = "d1", Project = ProjectRecord.Default }); // another project's do not count
        var refused = Assert.Throws<ApiProblem>(() => networks.Create(new CreateNetworkRequest { Name = "a2", Project = "alpha" }));

        Assert.Equal(409, refused.Status);
        Assert.Equal("quota-exceeded", refused.Type);
        Assert.Equal("project 'alpha' has 1 of 1 networks; this network needs 1 more.", Assert.Single(refused.Errors!["max_networks"]));
        Assert.Null(inventory.Network("a2"));
        Assert.False(Directory.Exists(Path.Combine(_root, "run", "switches", "a2")));

        networks.Delete("a1");
        Assert.Equal("alpha", networks.Create(new CreateNetworkRequest { Name = "a2", Project = "alpha" }).Project);
    }

    [Fact]
    public void AQuotaOfZeroNetworksRefusesTheFirst()
    {
        using var inventory = new InventoryStore(Path.Combine(_root, "hostvm.db"));
        inventory.PutProject(new ProjectRecord { Name = "alpha", Quotas = new ProjectQuotas { MaxNetworks = 0 } });
        using var networks = new NetworkManager(new HostSettings { DataDir = _root, RuntimeDir = Path.Combine(_root, "run") }, inventory);

        Assert.Equal("quota-exceeded", Assert.Throws<ApiProblem>(() => networks.Create(new CreateNetworkRequest { Name = "a1", Project = "alpha" })).Type);
    }

    public void Dispose() => Directory.Delete(_root, recursive: true);
}
