namespace HostVM.Integration.Tests;

/// <summary>A RISC-V Linux Image whose code is `j .` (code0): it boots and spins in place, so a VMM runs without a guest OS.</summary>
public static class SpinKernel
{
    public static byte[] Image { get; } = Make();

    private static byte[] Make()
    {
        var image = new byte[4096];
        image[0] = 0x6f; // j .
        "RISCV\0\0\0"u8.CopyTo(image.AsSpan(48));
        "RSC\x05"u8.CopyTo(image.AsSpan(56));
        return image;
    }
}
