using System.Net;
using System.Net.Sockets;
using HostVM.Host.Api;
using HostVM.Host.Inventory;
using HostVM.Host.Networks;

namespace HostVM.Host.Tests.Networks;

/// <summary>Named networks on a real inventory and runtime directory; the forwards' NATs bind real loopback sockets.</summary>
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

    [Fact]
    public async Task AForwardBindsAPortThatIsRecordedListedRebindsAfterARestartAndClosesWhenRemoved()
    {
        using var inventory = NatWithVm(out var settings);
        int port;
        using (var networks = new NetworkManager(settings, inventory))
        {
            var added = networks.AddForward("nat", new AddForwardRequest { Vm = "web", GuestPort = 22 }, hostAdmin: false);
            Assert.Equal(new ForwardView("tcp", "127.0.0.1", added.HostPort, "web", 22, Listening: true), added);
            Assert.NotEqual(0, added.HostPort);
            port = added.HostPort;
            Assert.Equal(added, Assert.Single(networks.Forwards("nat")));
            Assert.Equal(added, Assert.Single(networks.Get("nat").Forwards));
            Assert.Equal(new NetworkForward { Protocol = "tcp", Address = "127.0.0.1", HostPort = port, VmId = "vm-1", GuestPort = 22 }, Assert.Single(inventory.Network("nat")!.Forwards));
            await AssertListensAsync(port, true);
        }

        // The daemon stopped: the port is closed; a new daemon binds the same port again.
        await AssertListensAsync(port, false);
        using (var networks = new NetworkManager(settings, inventory))
        {
            Assert.True(Assert.Single(networks.Forwards("nat")).Listening);
            await AssertListensAsync(port, true);
            Assert.Equal(404, Assert.Throws<ApiProblem>(() => networks.RemoveForward("nat", "udp", port)).Status);
            networks.RemoveForward("nat", "tcp", port);
            Assert.Empty(networks.Forwards("nat"));
            Assert.Empty(inventory.Network("nat")!.Forwards);
            await AssertListensAsync(port, false);
        }
    }

    [Fact]
    public void WhatAProjectsOperatorMayNotDoIsRefusedAndNothingIsBound()
    {
        using var inventory = NatWithVm(out var settings);
        inventory.PutNetwork(new NetworkRecord { Name = "lan", Project = "alpha" });
        inventory.PutVm(Vm("vm-2", "other", "beta", "nat"), "created", "a VM of another project");
        inventory.PutVm(Vm("vm-3", "offline", "alpha", "lan"), "created", "a VM on another network");
        using var networks = new NetworkManager(settings, inventory);

        int Refused(string network, AddForwardRequest request, bool hostAdmin = false) =>
            Assert.Throws<ApiProblem>(() => networks.AddForward(network, request, hostAdmin)).Status;

        var ok = new AddForwardRequest { Vm = "web", GuestPort = 80 };
        Assert.Equal(403, Refused("nat", ok with { Address = "0.0.0.0" }));
        Assert.Equal(403, Refused("nat", ok with { HostPort = 80 }));
        Assert.Equal(404, Refused("nat", ok with { Vm = "other" })); // another project's VM is as if it did not exist
        Assert.Equal(404, Refused("nat", ok with { Vm = "nothing" }));
        Assert.Equal(400, Refused("nat", ok with { Vm = "offline" })); // no NIC on this network
        Assert.Equal(400, Refused("lan", ok with { Vm = "offline" })); // no NAT
        Assert.Equal(400, Refused("nat", ok with { GuestPort = 0 }));
        Assert.Equal(400, Refused("nat", ok with { HostPort = 70000 }));
        Assert.Equal(400, Refused("nat", ok with { Protocol = "sctp" }));
        Assert.Equal(400, Refused("nat", ok with { Address = "::1" }));
        Assert.Empty(networks.Forwards("nat"));

        // A host port in use: 409, saying so.
        using var taken = new TcpListener(IPAddress.Loopback, 0);
        taken.Start();
        int busy = ((IPEndPoint)taken.LocalEndpoint).Port;
        var inUse = Assert.Throws<ApiProblem>(() => networks.AddForward("nat", ok with { HostPort = busy }, hostAdmin: false));
        Assert.Equal(409, inUse.Status);
        Assert.Contains("in use", inUse.Message, StringComparison.Ordinal);

        // The same port twice on one network: 409 (the second forward of UDP on it is another port).
        var first = networks.AddForward("nat", ok, hostAdmin: false);
        Assert.Equal(409, Refused("nat", ok with { HostPort = first.HostPort }));
        Assert.Equal("udp", networks.AddForward("nat", ok with { Protocol = "udp", HostPort = first.HostPort }, hostAdmin: false).Protocol);

        // At most MaxForwardsPerNetwork.
        while (networks.Forwards("nat").Count < NetworkManager.MaxForwardsPerNetwork)
        {
            networks.AddForward("nat", ok, hostAdmin: false);
        }

        Assert.Equal(409, Refused("nat", ok));

        // The host's admin may listen elsewhere (any address) and below 1024; 0.0.0.0:0 needs no root.
        networks.RemoveForward("nat", "tcp", first.HostPort);
        Assert.Equal("0.0.0.0", networks.AddForward("nat", ok with { Address = "0.0.0.0" }, hostAdmin: true).Address);
    }

    [Fact]
    public async Task ADeletedVmsForwardsCloseAndAnOldRecordWithoutForwardsLoads()
    {
        using var inventory = NatWithVm(out var settings);
        using var networks = new NetworkManager(settings, inventory);
        int port = networks.AddForward("nat", new AddForwardRequest { Vm = "web", GuestPort = 22 }, hostAdmin: false).HostPort;
        networks.RemoveForwardsOf("vm-1");
        Assert.Empty(networks.Forwards("nat"));
        await AssertListensAsync(port, false);

        // A record written before forwards: no "forwards" field.
        var json = System.Text.Json.JsonSerializer.Serialize(new NetworkRecord { Name = "old", Nat = true }, HostJsonContext.Default.NetworkRecord);
        Assert.Contains("\"forwards\":[]", json, StringComparison.Ordinal);
        var old = System.Text.Json.JsonSerializer.Deserialize(json.Replace(",\"forwards\":[]", string.Empty, StringComparison.Ordinal), HostJsonContext.Default.NetworkRecord)!;
        Assert.Empty(old.Forwards);
    }

    private InventoryStore NatWithVm(out HostSettings settings)
    {
        var inventory = new InventoryStore(Path.Combine(_root, "hostvm.db"));
        inventory.PutProject(new ProjectRecord { Name = "alpha" });
        inventory.PutProject(new ProjectRecord { Name = "beta" });
        inventory.PutNetwork(new NetworkRecord { Name = "nat", Project = "alpha", Nat = true });
        inventory.PutVm(Vm("vm-1", "web", "alpha", "nat"), "created", "a VM on the NAT");
        settings = new HostSettings { DataDir = _root, RuntimeDir = Path.Combine(_root, "run") };
        return inventory;
    }

    private static VmRecord Vm(string id, string name, string project, string network) =>
        new() { Id = id, Name = name, Image = "img", Project = project, State = VmStates.Stopped, Networks = [new VmNetwork(network, "52:54:00:00:00:" + id[^1] + "0")] };

    private static async Task AssertListensAsync(int port, bool listens)
    {
        using var client = new TcpClient();
        // A listener accepts; with no lease for the VM's NIC (no guest runs here) it then resets. No listener refuses.
        var failure = await Record.ExceptionAsync(() => client.ConnectAsync(IPAddress.Loopback, port));
        bool refused = failure is SocketException { SocketErrorCode: SocketError.ConnectionRefused };
        Assert.True(listens != refused, $"port {port}: {(listens ? "expected a listener, got " + failure?.Message : "expected none, but it accepted")}");
    }

    public void Dispose() => Directory.Delete(_root, recursive: true);
}
