#define BOOST_TEST_MODULE deployer_tests
#include <boost/test/unit_test.hpp>
