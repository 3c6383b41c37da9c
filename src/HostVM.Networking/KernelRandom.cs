using System.Runtime.InteropServices;

namespace HostVM.Networking;

/// <summary>
/// Random bytes from the kernel (getrandom(2)), as RandomNumberGenerator gives them, without it:
/// on Linux .NET's RandomNumberGenerator loads OpenSSL's libcrypto, about 3.5 MiB resident in every
/// VMM that only needs a MAC address, a TCP sequence number or entropy for its guest.
/// </summary>
public static partial class KernelRandom
{
    private const int Interrupted = 4;

    /// <summary>Fills <paramref name="buffer"/> from the kernel's random pool (blocks only until it is first seeded).</summary>
    /// <exception cref="IOException">The kernel refused (never expected on Linux ≥ 3.17).</exception>
    public static unsafe void Fill(Span<byte> buffer)
    {
        fixed (byte* start = buffer)
        {
            int done = 0;
            while (done < buffer.Length)
            {
                nint n = GetRandom(start + done, (nuint)(buffer.Length - done), 0);
                if (n < 0)
                {
                    int error = Marshal.GetLastPInvokeError();
                    if (error == Interrupted)
                    {
                        continue;
                    }

                    throw new IOException($"getrandom failed: {Marshal.GetPInvokeErrorMessage(error)}.");
                }

                done += (int)n;
            }
        }
    }

    /// <summary><paramref name="count"/> random bytes.</summary>
    public static byte[] GetBytes(int count)
    {
        var bytes = new byte[count];
        Fill(bytes);
        return bytes;
    }

    /// <summary>A random integer in [0, <paramref name="toExclusive"/>), uniform (rejection sampling).</summary>
    public static int GetInt32(int toExclusive)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(toExclusive);
        uint range = (uint)toExclusive;
        uint limit = uint.MaxValue - (uint.MaxValue % range) - 1; // values above it would favour small results
        Span<byte> b = stackalloc byte[4];
        while (true)
        {
            Fill(b);
            uint v = BitConverter.ToUInt32(b);
            if (v <= limit)
            {
                return (int)(v % range);
            }
        }
    }

    [LibraryImport("libc", EntryPoint = "getrandom", SetLastError = true)]
    private static unsafe partial nint GetRandom(byte* buffer, nuint length, uint flags);
}
