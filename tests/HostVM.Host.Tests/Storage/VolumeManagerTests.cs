using System.Security.Cryptography;
using HostVM.Host.Api;
using HostVM.Host.Inventory;
using HostVM.Host.Storage;
using HostVM.Storage;
using HostVM.Storage.Tests;

namespace HostVM.Host.Tests.Storage;

/// <summary>Pools and volumes against a real inventory (SQLite) and real files, with qemu-img as the independent judge of what was written.</summary>
public sealed class VolumeManagerTests : IDisposable
{
    private const long Mib = 1 << 20;

    private readonly string _root = Directory.CreateTempSubdirectory("hostvm-volumes-").FullName;
    private readonly HostSettings _settings;
    private readonly InventoryStore _inventory;
    private readonly VolumeManager _volumes;

    public VolumeManagerTests()
    {
        _settings = new HostSettings { DataDir = Path.Combine(_root, "data"), RuntimeDir = Path.Combine(_root, "run") };
        Directory.CreateDirectory(_settings.DataDir);
        _inventory = new InventoryStore(Path.Combine(_settings.DataDir, "hostvm.db"));
        _volumes = new VolumeManager(_settings, _inventory);
    }

    private string PoolDir => _volumes.DefaultDirectory;

    private VolumeRecord Create(string name, long? size, string? format = null, string? backing = null, string project = ProjectRecord.Default) =>
        _volumes.CreateVolume(new CreateVolumeRequest { Name = name, SizeBytes = size, Format = format, Backing = backing, Project = project });

    private async Task<VolumeRecord> ImportAsync(string name, byte[] content, string format, string project = ProjectRecord.Default)
    {
        using var stream = new MemoryStream(content);
        return await _volumes.ImportAsync(PoolRecord.Default, name, project, format, stream, content.Length, TestContext.Current.CancellationToken);
    }

    private async Task<byte[]> ExportAsync(VolumeRecord volume)
    {
        using var output = new MemoryStream();
        await _volumes.ExportAsync(volume, output, TestContext.Current.CancellationToken);
        return output.ToArray();
    }

    /// <summary>Content with data, runs of zeros and a last partial sector.</summary>
    private static byte[] Content(int length, int seed)
    {
        var data = new byte[length];
        var random = new Random(seed);
        for (int at = 0; at < length; at += 192 * 1024)
        {
            random.NextBytes(data.AsSpan(at, Math.Min(64 * 1024, length - at)));
        }

        return data;
    }

    [Fact]
    public void TheDefaultPoolIsInTheDataDirectoryAndCannotBeDeleted()
    {
        var pool = _volumes.Pool(PoolRecord.Default);
        Assert.Equal(Path.Combine(_settings.DataDir, "pools", "default"), _volumes.DirectoryOf(pool));
        Assert.True(Directory.Exists(PoolDir));
        Assert.Equal(409, Assert.Throws<ApiProblem>(() => _volumes.DeletePool(PoolRecord.Default)).Status);
        var view = _volumes.View(pool, _ => true, showPath: true);
        Assert.True(view.CapacityBytes > 0 && view.AvailableBytes > 0);
        Assert.Null(_volumes.View(pool, _ => true, showPath: false).Path);
    }

    [Fact]
    public void VolumesQemuImgReadsAreMadeInEitherFormat()
    {
        var qcow2 = Create("a", 10 * Mib);
        var raw = Create("b", 4 * Mib, "raw");
        Assert.Equal("a.qcow2", qcow2.FileName);
        string info = QemuTools.Check("qemu-img", PoolDir, "info", "--output=json", "a.qcow2");
        Assert.Contains("\"format\": \"qcow2\"", info, StringComparison.Ordinal);
        Assert.Contains($"\"virtual-size\": {10 * Mib}", info, StringComparison.Ordinal);
        QemuTools.Check("qemu-img", PoolDir, "check", "a.qcow2");
        Assert.Equal(4 * Mib, new FileInfo(Path.Combine(PoolDir, raw.FileName)).Length);
        Assert.True(FileSpace.Allocated(Path.Combine(PoolDir, raw.FileName)) < Mib, "a new raw volume is sparse");
        Assert.Equal(409, Assert.Throws<ApiProblem>(() => Create("a", Mib)).Status);
        Assert.Equal(2, _inventory.Volumes().Count);
    }

    [Theory]
    [InlineData("../etc", 400)]
    [InlineData("A", 400)]
    [InlineData("a/b", 400)]
    [InlineData("", 400)]
    public void VolumeNamesAreCheckedAsVmNamesAre(string name, int status)
    {
        Assert.Equal(status, Assert.Throws<ApiProblem>(() => Create(name, Mib)).Status);
        Assert.Empty(Directory.GetFiles(PoolDir));
    }

    [Theory]
    [InlineData(0L)]
    [InlineData(1000L)]
    [InlineData(-512L)]
    [InlineData((64L << 40) + 512)]
    public void SizesOutsideWholeSectorsUpTo64TiBAreRefused(long size) =>
        Assert.Equal("size_bytes", Assert.Single(Assert.Throws<ApiProblem>(() => Create("a", size)).Errors!).Key);

    [Fact]
    public void KeysNameAPoolAndAVolumeNeverAPath()
    {
        Assert.Equal(("default", "disk"), VolumeManager.ParseKey("disk", "v"));
        Assert.Equal(("fast", "disk"), VolumeManager.ParseKey("fast/disk", "v"));
        foreach (string bad in new[] { "a/b/c", "/disk", "fast/", "../x", "fast/..", "fast/.x" })
        {
            Assert.Equal(400, Assert.Throws<ApiProblem>(() => VolumeManager.ParseKey(bad, "v")).Status);
        }
    }

    [Fact]
    public async Task ImportAndExportConvertAndKeepTheContentExactly()
    {
        byte[] content = Content(3 * (int)Mib + 1000, 1);
        var asQcow2 = await ImportAsync("q", content, "qcow2");
        var asRaw = await ImportAsync("r", content, "raw");
        Assert.Equal(3 * Mib + 1024, asQcow2.SizeBytes); // rounded up to whole sectors
        QemuTools.Check("qemu-img", PoolDir, "check", "q.qcow2");
        QemuTools.Check("qemu-img", PoolDir, "compare", "-f", "qcow2", "-F", "raw", "q.qcow2", "r.raw");
        byte[] padded = [.. content, .. new byte[24]];
        Assert.Equal(padded, await ExportAsync(asQcow2));
        Assert.Equal(padded, await ExportAsync(asRaw));

        // Zeros are not written: two thirds of the content is zeros, and so is most of neither file.
        Assert.True(FileSpace.Allocated(Path.Combine(PoolDir, "q.qcow2")) < 2 * Mib, "the qcow2 volume stayed sparse");
        Assert.True(FileSpace.Allocated(Path.Combine(PoolDir, "r.raw")) < 2 * Mib, "the raw volume stayed sparse");
    }

    [Fact]
    public async Task AnUploadThatEndsEarlyOrRunsLongLeavesNothing()
    {
        using var shorter = new MemoryStream(new byte[1000]);
        var problem = await Assert.ThrowsAsync<ApiProblem>(() => _volumes.ImportAsync("default", "x", "default", "qcow2", shorter, 4096, TestContext.Current.CancellationToken));
        Assert.Equal(400, problem.Status);
        using var longer = new MemoryStream(new byte[8192]);
        Assert.Equal(400, (await Assert.ThrowsAsync<ApiProblem>(() => _volumes.ImportAsync("default", "x", "default", "raw", longer, 4096, TestContext.Current.CancellationToken))).Status);
        Assert.Empty(_inventory.Volumes());
        Assert.Empty(Directory.GetFiles(PoolDir));
    }

    [Fact]
    public async Task AnOverlayReadsItsBaseWhichCannotChangeWhileItHasOne()
    {
        byte[] content = Content(2 * (int)Mib, 2);
        var base_ = await ImportAsync("base", content, "raw");
        var overlay = Create("clone", null, backing: "default/base");
        Assert.Equal(base_.SizeBytes, overlay.SizeBytes);
        Assert.Equal("default/base", overlay.Backing);
        Assert.Equal(content, await ExportAsync(overlay));
        QemuTools.Check("qemu-img", PoolDir, "compare", "clone.qcow2", "base.raw");
        Assert.Equal(["default/clone"], _volumes.View(base_).Overlays);

        var refused = Assert.Throws<ApiProblem>(() => _volumes.Delete(base_));
        Assert.Equal(409, refused.Status);
        Assert.Contains("default/clone", refused.Message, StringComparison.Ordinal);
        Assert.Contains("default/clone", Assert.Throws<ApiProblem>(() => _volumes.CheckAttachable(["base"], ProjectRecord.Default)).Message, StringComparison.Ordinal);
        Assert.Equal(["default/clone"], _volumes.CheckAttachable(["clone"], ProjectRecord.Default));

        // The chain a VMM is given comes from the records.
        Assert.Equal([Path.Combine(PoolDir, "base.raw")], _volumes.FilesOf(overlay).BackingChain);

        _volumes.Delete(overlay);
        _volumes.Delete(base_);
        Assert.Empty(Directory.GetFiles(PoolDir));
    }

    [Fact]
    public void AnotherProjectsVolumeIsNeitherABaseNorAttachable()
    {
        _inventory.PutProject(new ProjectRecord { Name = "beta", CreatedAt = DateTimeOffset.UtcNow });
        Create("theirs", Mib, project: "beta");
        Assert.Equal("backing", Assert.Single(Assert.Throws<ApiProblem>(() => Create("mine", null, backing: "default/theirs")).Errors!).Key);
        Assert.Equal(400, Assert.Throws<ApiProblem>(() => _volumes.CheckAttachable(["theirs"], ProjectRecord.Default)).Status);
    }

    [Fact]
    public async Task VolumesGrowAndNeverShrink()
    {
        var qcow2 = await ImportAsync("q", Content((int)Mib, 3), "qcow2");
        var raw = Create("r", Mib, "raw");
        Assert.Equal(8 * Mib, _volumes.Resize(qcow2, 8 * Mib).SizeBytes);
        Assert.Equal(8 * Mib, _volumes.Resize(raw, 8 * Mib).SizeBytes);
        Assert.Contains($"\"virtual-size\": {8 * Mib}", QemuTools.Check("qemu-img", PoolDir, "info", "--output=json", "q.qcow2"), StringComparison.Ordinal);
        QemuTools.Check("qemu-img", PoolDir, "check", "q.qcow2");
        Assert.Equal(8 * Mib, new FileInfo(Path.Combine(PoolDir, "r.raw")).Length);
        Assert.Equal(400, Assert.Throws<ApiProblem>(() => _volumes.Resize(_inventory.Volume("default/q")!, 4 * Mib)).Status);
        Assert.Equal(8 * Mib, _inventory.Volume("default/q")!.SizeBytes);
    }

    [Fact]
    public async Task TheDiskQuotaCountsWhatVolumesAllocateNotTheirSize()
    {
        _inventory.PutProject(new ProjectRecord { Name = "small", Quotas = new ProjectQuotas { MaxDiskMib = 3 }, CreatedAt = DateTimeOffset.UtcNow });

        // A 1 TiB qcow2 volume allocates a few clusters: it fits a 3 MiB quota.
        Create("huge", 1L << 40, project: "small");
        byte[] random = RandomNumberGenerator.GetBytes(2 * (int)Mib);
        await ImportAsync("data", random, "raw", "small");
        Assert.InRange(_volumes.AllocatedBytes("small"), 2 * Mib, 3 * Mib);

        var refused = await Assert.ThrowsAsync<ApiProblem>(() => ImportAsync("more", random, "raw", "small"));
        Assert.Equal("quota-exceeded", refused.Type);
        Assert.Equal("max_disk_mib", Assert.Single(refused.Errors!).Key);
        Assert.Null(_inventory.Volume("default/more"));
        Assert.Equal(2, Directory.GetFiles(PoolDir).Length);
    }

    [Fact]
    public void PoolPathsAreAbsoluteRealAndApartFromTheDaemonsAndEachOther()
    {
        string outside = Path.Combine(_root, "pools");
        foreach (string bad in new[] { "relative/dir", outside + "/../x", outside + "/", "/", _settings.DataDir, Path.Combine(_settings.DataDir, "x"), _root })
        {
            Assert.Equal(400, Assert.Throws<ApiProblem>(() => _volumes.CreatePool(new CreatePoolRequest { Name = "p", Path = bad })).Status);
        }

        Directory.CreateDirectory(Path.Combine(_root, "real"));
        File.CreateSymbolicLink(Path.Combine(_root, "link"), Path.Combine(_root, "real"));
        Assert.Contains("symbolic link", Assert.Throws<ApiProblem>(() => _volumes.CreatePool(new CreatePoolRequest { Name = "p", Path = Path.Combine(_root, "link", "pool") })).Message, StringComparison.Ordinal);
        Assert.Equal(400, Assert.Throws<ApiProblem>(() => _volumes.CreatePool(new CreatePoolRequest { Name = "p", Driver = "zfs", Path = outside })).Status);

        var pool = _volumes.CreatePool(new CreatePoolRequest { Name = "fast", Path = outside });
        Assert.True(Directory.Exists(outside));
        Assert.Equal(409, Assert.Throws<ApiProblem>(() => _volumes.CreatePool(new CreatePoolRequest { Name = "inner", Path = Path.Combine(outside, "inner") })).Status);
        Assert.Equal(409, Assert.Throws<ApiProblem>(() => _volumes.CreatePool(new CreatePoolRequest { Name = "fast", Path = Path.Combine(_root, "other") })).Status);

        var volume = _volumes.CreateVolume(new CreateVolumeRequest { Pool = "fast", Name = "v", SizeBytes = Mib });
        Assert.True(File.Exists(Path.Combine(outside, "v.qcow2")));
        Assert.Equal(409, Assert.Throws<ApiProblem>(() => _volumes.DeletePool("fast")).Status);

        // An overlay in another pool names its base by its full path.
        var overlay = _volumes.CreateVolume(new CreateVolumeRequest { Pool = "default", Name = "o", Backing = "fast/v" });
        Assert.Contains(Path.Combine(outside, "v.qcow2"), QemuTools.Check("qemu-img", PoolDir, "info", "o.qcow2"), StringComparison.Ordinal);
        _volumes.Delete(overlay);
        _volumes.Delete(volume);
        _volumes.DeletePool(pool.Name);
        Assert.Null(_inventory.Pool("fast"));
        Assert.True(Directory.Exists(outside), "a pool's directory is the admin's: it stays");
    }

    [Fact]
    public void AFileLeftInAPoolIsNeverOverwrittenAndAPartialOneIsSweptAtStart()
    {
        File.WriteAllText(Path.Combine(PoolDir, "mine.qcow2"), "not HostVM's");
        Assert.Equal(409, Assert.Throws<ApiProblem>(() => Create("mine", Mib)).Status);
        Assert.Equal("not HostVM's", File.ReadAllText(Path.Combine(PoolDir, "mine.qcow2")));

        File.WriteAllText(Path.Combine(PoolDir, VolumeManager.PartialPrefix + "1234"), "an import a daemon died in");
        _ = new VolumeManager(_settings, _inventory);
        Assert.Equal(["mine.qcow2"], Directory.GetFiles(PoolDir).Select(Path.GetFileName));
    }

    public void Dispose()
    {
        _inventory.Dispose();
        Directory.Delete(_root, recursive: true);
    }
}
