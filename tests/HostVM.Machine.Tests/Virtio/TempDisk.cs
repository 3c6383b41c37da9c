namespace HostVM.Machine.Tests.Virtio;

/// <summary>A raw image file in the temp directory filled with a known pattern; deleted on dispose.</summary>
internal sealed class TempDisk : IDisposable
{
    public TempDisk(int length, int seed = 1)
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"hostvm-virtio-{Guid.NewGuid():N}.img");
        Initial = new byte[length];
        new Random(seed).NextBytes(Initial);
        File.WriteAllBytes(Path, Initial);
    }

    public string Path { get; }

    /// <summary>What the file held when created.</summary>
    public byte[] Initial { get; }

    public void Dispose() => File.Delete(Path);
}
