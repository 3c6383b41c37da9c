using HostVM.Host.Inventory;
using Microsoft.Data.Sqlite;

namespace HostVM.Host.Tests;

/// <summary>The inventory on a real SQLite file: what is written is there after reopening, in WAL mode.</summary>
public sealed class InventoryStoreTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("hostvm-inventory-").FullName;

    private string Db => Path.Combine(_dir, "hostvm.db");

    [Fact]
    public void AVmWrittenBeforeVolumesReadsWithNone()
    {
        using (var store = new InventoryStore(Db))
        {
            // The record as an older daemon wrote it: no "volumes" (nor "disk_format").
            using var db = new SqliteConnection($"Data Source={Db};Pooling=False");
            db.Open();
            using var insert = db.CreateCommand();
            insert.CommandText = """INSERT INTO vms (id, name, doc) VALUES ('old', 'old', '{"id": "old", "name": "old", "image": "guest", "state": "stopped", "disk_mib": 64}')""";
            insert.ExecuteNonQuery();
        }

        using var reopened = new InventoryStore(Db);
        var vm = reopened.Vm("old")!;
        Assert.NotNull(vm.Volumes);
        Assert.Empty(vm.Volumes);
        Assert.Null(vm.DiskFormat);
    }

    [Fact]
    public void WhatIsWrittenSurvivesReopeningAndEventsComeNewestFirst()
    {
        var vm = new VmRecord
        {
            Id = "abc",
            Name = "web",
            Image = "guest",
            State = VmStates.Running,
            Networks = [new VmNetwork("lan", "52:54:00:00:00:01")],
            DiskLimits = new RateLimit { BandwidthBytesPerS = 1000 },
            Pid = 42,
            CreatedAt = DateTimeOffset.UnixEpoch,
        };
        using (var store = new InventoryStore(Db))
        {
            store.PutImage(new ImageRecord { Name = "guest", KernelBytes = 10 });
            store.PutNetwork(new NetworkRecord { Name = "lan" }, "created");
            store.PutVm(vm, "created", "created it");
            store.PutVm(vm with { State = VmStates.Stopped, Pid = null }, "stopped", "stopped it");
        }

        using (var store = new InventoryStore(Db))
        {
            var read = store.Vm("web")!;
            Assert.Equal(vm with { State = VmStates.Stopped, Pid = null }, read with { Networks = vm.Networks, Volumes = vm.Volumes, DiskLayers = vm.DiskLayers });
            Assert.Equal(vm.Networks, read.Networks);
            Assert.Equal(vm.Volumes, read.Volumes);
            Assert.Equal("web", store.Vm("abc")!.Name); // by id as well as by name
            Assert.Equal("guest", Assert.Single(store.Images()).Name);
            Assert.Equal("lan", Assert.Single(store.Networks()).Name);
            Assert.Equal(["stopped", "created"], store.Events("web", 10).Select(e => e.Type));
            store.DeleteVm(read, "gone");
            Assert.Null(store.Vm("web"));
            Assert.Equal("deleted", store.Events("web", 1)[0].Type);
        }

        using var raw = new SqliteConnection($"Data Source={Db}");
        raw.Open();
        using var cmd = raw.CreateCommand();
        cmd.CommandText = "PRAGMA journal_mode";
        Assert.Equal("wal", (string)cmd.ExecuteScalar()!);
    }

    [Fact]
    public void AVmNameIsUnique()
    {
        using var store = new InventoryStore(Db);
        store.PutVm(new VmRecord { Id = "1", Name = "same", Image = "i", State = VmStates.Stopped }, "created", "x");
        Assert.Throws<SqliteException>(() => store.PutVm(new VmRecord { Id = "2", Name = "same", Image = "i", State = VmStates.Stopped }, "created", "y"));
        Assert.Equal("1", store.Vm("same")!.Id);
        Assert.Single(store.Events("same", 10)); // the failed write left no event either
    }

    public void Dispose()
    {
        SqliteConnection.ClearAllPools();
        Directory.Delete(_dir, recursive: true);
    }
}
